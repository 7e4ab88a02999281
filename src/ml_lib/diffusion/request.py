"""GenerationRequest: what the user asked for. ``None`` everywhere means "decide for me"."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GenerationRequest", "LoraRequest"]


@dataclass(frozen=True, slots=True)
class LoraRequest:
    """A LoRA the user asked for: a path (or catalog name), UNet weight, text-encoder weight (None = same)."""

    ref: str
    weight: float = 1.0
    te_weight: float | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A prompt plus optional overrides; the planner fills every ``None``.

    ``model`` is a path (diffusers folder or single ``.safetensors`` file), a catalog name or a Hub id.
    ``config_dir`` names a weightless diffusers config folder for a single-file checkpoint of an
    unusual architecture (see the README).
    """

    prompt: str
    negative_prompt: str = ""
    model: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    schedule: str | None = None
    seed: int | None = None
    batch_size: int | None = None
    clip_skip: int | None = None
    output_dir: str | None = None
    name_template: str | None = None
    image_format: str | None = None
    loras: tuple[LoraRequest, ...] = ()
    config_dir: str | None = None
