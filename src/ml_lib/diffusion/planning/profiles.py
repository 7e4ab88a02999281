"""Per-family generation defaults (pure data). The prompt-intelligence planner refines these."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.families import Family, PredictionType

__all__ = ["FamilyProfile", "profile_for"]


@dataclass(frozen=True, slots=True)
class FamilyProfile:
    """Defaults that suit a model family; ``note`` explains them in decisions."""

    family: Family
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    schedule: str
    clip_skip: int
    note: str


_PROFILES: dict[tuple[Family, PredictionType], FamilyProfile] = {
    (Family.SD1, PredictionType.EPSILON): FamilyProfile(
        Family.SD1, 512, 512, 25, 7.0, "DPM++ 2M", "Karras", 1, "SD1.x is trained at 512x512"
    ),
    (Family.SD2, PredictionType.EPSILON): FamilyProfile(
        Family.SD2, 512, 512, 25, 7.0, "DPM++ 2M", "Karras", 1, "SD2.x base (epsilon) is trained at 512x512"
    ),
    (Family.SD2, PredictionType.V_PREDICTION): FamilyProfile(
        Family.SD2, 768, 768, 25, 7.0, "DPM++ 2M", "Karras", 1, "SD2.x v-prediction is trained at 768x768"
    ),
    (Family.SDXL, PredictionType.EPSILON): FamilyProfile(
        Family.SDXL, 1024, 1024, 30, 6.0, "DPM++ 2M", "Karras", 1, "SDXL is trained at 1024x1024"
    ),
    (Family.SDXL, PredictionType.V_PREDICTION): FamilyProfile(
        Family.SDXL,
        1024,
        1024,
        30,
        5.0,
        "Euler",
        "Uniform",
        1,
        "SDXL v-prediction models prefer Euler, low CFG",
    ),
    (Family.SDXL_REFINER, PredictionType.EPSILON): FamilyProfile(
        Family.SDXL_REFINER,
        1024,
        1024,
        30,
        6.0,
        "DPM++ 2M",
        "Karras",
        1,
        "the SDXL refiner works at 1024x1024",
    ),
    (Family.DEMO, PredictionType.EPSILON): FamilyProfile(
        Family.DEMO,
        64,
        64,
        20,
        4.0,
        "DDIM",
        "Uniform",
        1,
        "the demo model is trained at 64x64 only, and evaluated with DDIM 20 steps at CFG 4",
    ),
}


def profile_for(family: Family, prediction: PredictionType) -> FamilyProfile:
    """The profile for a family and prediction type (epsilon profile when no specific one exists)."""
    profile = _PROFILES.get((family, prediction)) or _PROFILES.get((family, PredictionType.EPSILON))
    if profile is None:
        raise KeyError(f"no generation profile for family {family.value!r}")
    return profile
