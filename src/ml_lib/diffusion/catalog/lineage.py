"""Where a model comes from, beyond its architecture: derivatives (Pony, Illustrious, NoobAI …),
Civitai ``baseModel`` names, kohya/modelspec base-model strings, and distillation (speed) LoRAs.

Everything here reads names and metadata strings; evidence is a list of ``(source, text)`` pairs,
strongest first, and the first that matches wins (its source is named in the reason).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .families import Family
from .records import SpeedHint

__all__ = [
    "Lineage",
    "civitai_base",
    "derivative_of",
    "family_from_base_version",
    "family_from_modelspec",
    "speed_hint",
]

Evidence = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Lineage:
    """What a name or metadata string says: family, derivative, v-prediction, and the evidence."""

    family: Family | None = None
    derivative: str | None = None
    v_prediction: bool = False
    reason: str = ""


_DERIVATIVES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("NoobAI", re.compile(r"noob[\s_-]*ai|\bnoob", re.I)),
    ("Illustrious", re.compile(r"illustrious", re.I)),
    ("Pony", re.compile(r"pony", re.I)),
    ("Animagine", re.compile(r"animagine", re.I)),
    ("Playground", re.compile(r"playground", re.I)),
    ("Kolors", re.compile(r"kolors", re.I)),
)

#: Civitai ``baseModel`` → (family, derivative). Unlisted values keep the header's family.
_CIVITAI: dict[str, tuple[Family, str | None]] = {
    "sd 1.4": (Family.SD1, None),
    "sd 1.5": (Family.SD1, None),
    "sd 1.5 lcm": (Family.SD1, "LCM"),
    "sd 1.5 hyper": (Family.SD1, "Hyper"),
    "sd 2.0": (Family.SD2, None),
    "sd 2.0 768": (Family.SD2, None),
    "sd 2.1": (Family.SD2, None),
    "sd 2.1 768": (Family.SD2, None),
    "sdxl 0.9": (Family.SDXL, None),
    "sdxl 1.0": (Family.SDXL, None),
    "sdxl 1.0 lcm": (Family.SDXL, "LCM"),
    "sdxl turbo": (Family.SDXL, "Turbo"),
    "sdxl lightning": (Family.SDXL, "Lightning"),
    "sdxl hyper": (Family.SDXL, "Hyper"),
    "pony": (Family.SDXL, "Pony"),
    "illustrious": (Family.SDXL, "Illustrious"),
    "noobai": (Family.SDXL, "NoobAI"),
    "playground v2": (Family.SDXL, "Playground"),
    "sd 3": (Family.SD3, None),
    "sd 3.5": (Family.SD3, "3.5"),
    "sd 3.5 medium": (Family.SD3, "3.5-medium"),
    "sd 3.5 large": (Family.SD3, "3.5-large"),
    "sd 3.5 large turbo": (Family.SD3, "3.5-large-turbo"),
    "flux.1 d": (Family.FLUX, "flux-dev"),
    "flux.1 s": (Family.FLUX, "flux-schnell"),
}


def civitai_base(base_model: str) -> Lineage | None:
    """Family and derivative named by a Civitai ``baseModel`` string (None when unknown)."""
    found = _CIVITAI.get(base_model.strip().lower())
    return Lineage(found[0], found[1], reason=f"Civitai baseModel {base_model!r}") if found else None


def derivative_of(evidence: Evidence) -> Lineage | None:
    """The derivative named by the first piece of evidence that names a known one."""
    for source, text in evidence:
        for name, pattern in _DERIVATIVES:
            if text and pattern.search(text):
                return Lineage(derivative=name, reason=f"{source} {text!r}")
    return None


def family_from_base_version(version: str) -> Lineage | None:
    """kohya ``ss_base_model_version`` → family and v-prediction."""
    v = version.lower()
    if v == "demo":
        return Lineage(Family.DEMO, reason=f"ss_base_model_version {version!r}")
    for prefix, family in (("sdxl", Family.SDXL), ("sd_v2", Family.SD2), ("sd_v1", Family.SD1),
                           ("sd3", Family.SD3), ("flux", Family.FLUX)):  # fmt: skip
        if v.startswith(prefix):
            v_pred = family in (Family.SD1, Family.SD2) and v.endswith("_v")
            return Lineage(family, v_prediction=v_pred, reason=f"ss_base_model_version {version!r}")
    return None


def family_from_modelspec(arch: str) -> Family | None:
    """``modelspec.architecture`` (e.g. ``stable-diffusion-xl-v1-base/lora``) → family."""
    a = arch.lower().split("/")[0]
    if "refiner" in a:
        return Family.SDXL_REFINER
    for prefix, family in (
        ("stable-diffusion-xl", Family.SDXL),
        ("stable-diffusion-v3", Family.SD3),
        ("stable-diffusion-3", Family.SD3),
        ("stable-diffusion-v2", Family.SD2),
        ("stable-diffusion-v1", Family.SD1),
        ("flux", Family.FLUX),
    ):
        if a.startswith(prefix):
            return family
    return None


_B = r"(?<![a-z])"  # a word start: not preceded by a letter (digits, '_', '-', '.' separate words)
_E = r"(?![a-z])"
_SPEED: tuple[tuple[str, re.Pattern[str], int | None, float | None, str | None, str | None], ...] = (
    # name, pattern, default steps, cfg, sampler, schedule
    ("DMD2", re.compile(_B + r"dmd2?" + _E), 4, 1.0, "LCM", None),
    ("TCD", re.compile(_B + r"tcd" + _E), 4, 1.0, "TCD", None),
    ("LCM", re.compile(_B + r"lcm" + _E), 4, 1.5, "LCM", None),
    ("Lightning", re.compile(_B + r"lightning" + _E), 4, 1.0, "Euler", "SGM Uniform"),
    ("Hyper", re.compile(_B + r"hyper[\s_-]?(?:sd|sdxl|flux)|hyper.*\d+[\s_-]?steps?"), 8, 1.0, "DDIM", None),
    ("Turbo", re.compile(_B + r"turbo" + _E), 4, 1.0, "Euler a", None),
)
_STEPS = re.compile(r"(\d{1,2})[\s_-]?steps?(?![a-z])")
_CFG_VARIANT = re.compile(_B + r"cfg" + _E)


def speed_hint(evidence: Evidence) -> SpeedHint | None:
    """The distillation LoRA named by the evidence, with the steps/CFG/sampler it is made for."""
    for source, text in evidence:
        low = (text or "").lower()
        for name, pattern, steps, cfg, sampler, schedule in _SPEED:
            if not pattern.search(low):
                continue
            found = _STEPS.search(low)
            n = int(found.group(1)) if found and 0 < int(found.group(1)) <= 50 else steps
            why = f"{source} {text!r}" + (f" names {n} steps" if found else f"; {name} default {steps} steps")
            if name == "Hyper" and _CFG_VARIANT.search(low):
                cfg = 5.0  # Hyper-SD "CFG" LoRAs keep guidance
                why += "; CFG-preserving variant"
            if name == "Hyper" and n == 1:
                sampler = "TCD"
            return SpeedHint(name, n, cfg, sampler, schedule, why)
    return None
