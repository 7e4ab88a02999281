"""Self-contained parts of a plan (re-exported by ``plan``): a model reference, the memory strategy, the
hires fix and the variation seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ._codec import OMIT_DEFAULT
from .prompt_schedule import PromptSchedule

__all__ = ["HiresPlan", "MemoryPlan", "ModelFormat", "ModelRef", "VariationPlan"]


class ModelFormat(str, Enum):
    """How a model is stored."""

    DIFFUSERS = "diffusers"
    SINGLE_FILE = "single_file"
    HUB = "hub"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved model: where it is, how it is stored, and what it is."""

    reference: str
    format: ModelFormat
    family: str
    prediction_type: str = "epsilon"
    name: str = ""
    hash: str | None = None
    config_dir: str | None = None


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """The memory strategy the engine applies (none, balanced, sequential, aggressive), the estimated peak
    on the computing device and the budget it was held against (None: not measured)."""

    strategy: str
    estimated_peak_bytes: int
    budget_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class HiresPlan:
    """A1111's hires fix: a second img2img pass at a larger size (``planning/hires.py`` has the rules).

    ``upscaler`` is A1111's name ("Latent", "Latent (bicubic)", "Lanczos", "Nearest", …) or, for a learned
    upscaler, the model's name with ``upscaler_path`` its file; ``resize_width``/``resize_height`` (A1111's
    "Hires resize", 0 = from the other side) replace ``scale`` when set; ``steps`` 0 means the first pass's
    steps; ``sampler``/``schedule``, ``prompt``/``negative_prompt`` empty mean the first pass's;
    ``prompt_schedule`` is A1111's schedule of the second pass (``calculate_hr_conds``), None when its
    prompts are conditioned on as written; ``checkpoint`` is A1111's "Hires checkpoint", the model the
    second pass runs on (None: the first pass's), of the first pass's family.
    """

    upscaler: str = "Latent"
    scale: float = 2.0
    resize_width: int = 0
    resize_height: int = 0
    steps: int = 0
    denoise: float = 0.7
    sampler: str = ""
    schedule: str = ""
    prompt: str = ""
    negative_prompt: str = ""
    upscaler_path: str | None = None
    upscaler_hash: str | None = None
    prompt_schedule: PromptSchedule | None = field(default=None, metadata=OMIT_DEFAULT)
    checkpoint: ModelRef | None = field(default=None, metadata=OMIT_DEFAULT)


@dataclass(frozen=True, slots=True)
class VariationPlan:
    """A1111's variation seed (subseed) and seed resize; strength 0 with a resize size is a resize alone."""

    seed: int = 0
    strength: float = 0.0
    resize_width: int = 0
    resize_height: int = 0
