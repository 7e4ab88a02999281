"""Generation parameters beyond the family profile: size buckets by aspect, presets, distilled retuning.

:func:`parameter_defaults` turns a family profile, the request, the prompt analysis and any speed hint
(a distilled checkpoint or a speed LoRA) into defaults, each with its source and a one-line reason; the
planner lets user values win over them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._assets import local_path
from ..catalog.families import Family, PredictionType
from ..catalog.lineage import speed_hint
from ..catalog.records import ModelRecord, SpeedHint
from ..errors import RequestError
from ..plan import LoraUse, ModelRef, Source
from ..prompt.analysis import PromptAnalysis
from ..request import GenerationRequest
from .profiles import FamilyProfile

__all__ = [
    "PRESETS",
    "SDXL_BUCKETS",
    "TEST_MODEL_SIZE",
    "TEST_MODEL_STEPS",
    "Bucket",
    "ParameterDefaults",
    "Preset",
    "SpeedSource",
    "bucket_for",
    "find_speed",
    "parameter_defaults",
    "preset_named",
    "size_buckets",
    "test_model_defaults",
]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A trained resolution (multiples of 64)."""

    width: int
    height: int

    @property
    def ratio(self) -> float:
        """Width / height."""
        return self.width / self.height


@dataclass(frozen=True, slots=True)
class Preset:
    """A speed/quality trade-off: how the profile's step count is scaled."""

    name: str
    step_scale: float
    note: str


PRESETS: tuple[Preset, ...] = (
    Preset("speed", 0.6, "speed preset: 60% of the profile's steps"),
    Preset("balanced", 1.0, "balanced preset: the profile's steps"),
    Preset("quality", 1.6, "quality preset: 160% of the profile's steps"),
)

#: The standard SDXL buckets (about one megapixel); other families use the same ratios at their budget.
SDXL_BUCKETS: tuple[Bucket, ...] = tuple(
    Bucket(w, h)
    for w, h in (
        (1024, 1024),
        (1152, 896),
        (896, 1152),
        (1216, 832),
        (832, 1216),
        (1344, 768),
        (768, 1344),
        (1536, 640),
        (640, 1536),
    )
)


@dataclass(frozen=True, slots=True)
class SpeedSource:
    """A distillation found in the checkpoint or a LoRA, and what said so."""

    hint: SpeedHint
    source: Source
    origin: str


@dataclass(frozen=True, slots=True)
class ParameterDefaults:
    """What the planner uses when the user set nothing: value, source and reason per field."""

    width: int
    height: int
    size_source: Source
    size_reason: str
    steps: int
    steps_source: Source
    steps_reason: str
    cfg_scale: float
    cfg_source: Source
    cfg_reason: str
    sampler: str
    schedule: str | None  # None: the sampler's own schedule
    sampler_source: Source
    sampler_reason: str


#: A model with random weights (``ml_lib.diffusion.testing``) draws noise at any size: plan it tiny and fast.
TEST_MODEL_SIZE, TEST_MODEL_STEPS = 64, 4


def test_model_defaults(p: ParameterDefaults) -> ParameterDefaults:
    """``p`` for a test model with random weights: 64x64 and 4 steps, saying why."""
    why = "a test model with random weights (ml_lib.diffusion.testing): tiny and fast, it draws noise"
    return dataclasses.replace(
        p,
        width=TEST_MODEL_SIZE,
        height=TEST_MODEL_SIZE,
        size_source=Source.PROFILE,
        size_reason=why,
        steps=TEST_MODEL_STEPS,
        steps_source=Source.PROFILE,
        steps_reason=why,
    )


def preset_named(name: str) -> Preset:
    """The preset called ``name``; RequestError names the choices otherwise."""
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise RequestError(f"Unknown preset {name!r}; choose one of {', '.join(p.name for p in PRESETS)}.")


def size_buckets(family: Family, side: int) -> tuple[Bucket, ...]:
    """Buckets at a ``side``² pixel budget: the SDXL set, or its ratios scaled and rounded to 64 (the
    demo model, trained at one size, has one bucket)."""
    if family is Family.DEMO:
        return (Bucket(side, side),)
    if family in (Family.SDXL, Family.SDXL_REFINER) and side == 1024:
        return SDXL_BUCKETS
    out: dict[Bucket, None] = {}
    for b in SDXL_BUCKETS:
        w = max(64, round(side * math.sqrt(b.ratio) / 64) * 64)
        h = max(64, round(side / math.sqrt(b.ratio) / 64) * 64)
        out.setdefault(Bucket(w, h), None)
    return tuple(out)


def bucket_for(ratio: float, buckets: Iterable[Bucket]) -> Bucket:
    """The bucket whose ratio is nearest to ``ratio`` (in log space; the first of equals)."""
    target = math.log(max(ratio, 1e-3))
    return min(buckets, key=lambda b: abs(math.log(b.ratio) - target))


def find_speed(
    model: ModelRef,
    loras: tuple[LoraUse, ...],
    records: Iterable[ModelRecord] | Mapping[str, ModelRecord] = (),
) -> SpeedSource | None:
    """A distilled checkpoint (catalog derivative/base model, else its name), else a speed LoRA
    (``records``: the catalog's, or already keyed by path)."""
    by_path = records if isinstance(records, Mapping) else {r.path: r for r in records}
    record = by_path.get(local_path(model.reference))
    evidence: list[tuple[str, str]] = []
    if record is not None:
        evidence.append(("catalog derivative", record.info.derivative or ""))
        if record.sidecar is not None:
            evidence.append(("Civitai base model", record.sidecar.base_model or ""))
    evidence.append(("checkpoint name", model.name or Path(model.reference).name))
    hint = speed_hint(evidence)
    if hint is not None:
        return SpeedSource(hint, Source.CATALOG, f"distilled checkpoint {model.name or model.reference!r}")
    for lora in loras:
        rec = by_path.get(local_path(lora.path))
        hint = rec.info.lora.speed if rec is not None and rec.info.lora is not None else None
        hint = hint or speed_hint((("LoRA name", lora.name),))
        if hint is not None:
            return SpeedSource(hint, Source.CATALOG, f"speed LoRA {lora.name!r}")
    return None


def _size(
    profile: FamilyProfile, prediction: PredictionType, analysis: PromptAnalysis | None
) -> tuple[int, int, Source, str]:
    why = f"{profile.family.value} profile: {profile.note}"
    if analysis is None or analysis.aspect.source == "default":
        return profile.width, profile.height, Source.PROFILE, why
    del prediction  # the profile's side already reflects it (SD2-v: 768)
    aspect = analysis.aspect
    bucket = bucket_for(aspect.ratio, size_buckets(profile.family, profile.width))
    said = f" ({aspect.cue!r})" if aspect.cue else ""
    reason = (
        f"prompt asks for {aspect.orientation} {aspect.ratio:.2f}:1 from {aspect.source}{said}; "
        f"nearest {profile.family.value} bucket {bucket.width}x{bucket.height}"
    )
    return bucket.width, bucket.height, Source.ANALYSIS, reason


def parameter_defaults(
    profile: FamilyProfile,
    prediction: PredictionType,
    request: GenerationRequest,
    analysis: PromptAnalysis | None = None,
    speed: SpeedSource | None = None,
) -> ParameterDefaults:
    """Defaults for size, steps, CFG and sampler; a speed hint overrides the preset and profile."""
    preset = preset_named(request.preset)
    width, height, size_source, size_reason = _size(profile, prediction, analysis)
    fam = profile.family.value
    steps = max(1, round(profile.steps * preset.step_scale))
    steps_source, steps_reason = Source.PROFILE, f"{fam} profile {profile.steps} steps; {preset.note}"
    cfg, cfg_source, cfg_reason = profile.cfg_scale, Source.PROFILE, f"{fam} profile"
    schedule: str | None  # a speed hint may leave the sampler's own schedule
    sampler, schedule = profile.sampler, profile.schedule
    sampler_source, sampler_reason = Source.PROFILE, f"{fam} profile default sampler"
    if speed is not None:
        hint, origin = speed.hint, speed.origin
        why = f"{origin} ({hint.name}): {hint.reason}"
        if hint.steps is not None:
            steps, steps_source, steps_reason = hint.steps, speed.source, f"{why}; preset not applied"
        if hint.cfg is not None:
            cfg, cfg_source, cfg_reason = hint.cfg, speed.source, why
        if hint.sampler is not None:
            sampler, schedule = hint.sampler, hint.schedule
            sampler_source, sampler_reason = speed.source, why
    return ParameterDefaults(
        width,
        height,
        size_source,
        size_reason,
        steps,
        steps_source,
        steps_reason,
        cfg,
        cfg_source,
        cfg_reason,
        sampler,
        schedule,
        sampler_source,
        sampler_reason,
    )
