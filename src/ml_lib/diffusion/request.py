"""GenerationRequest: what the user asked for. ``None`` everywhere means "decide for me"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ControlRequest", "GenerationRequest", "IPAdapterRequest", "LoraRequest"]

#: An image given by the user: a path, encoded bytes, a PIL image or a numpy array.
ImageInput = Any


@dataclass(frozen=True, slots=True)
class LoraRequest:
    """A LoRA the user asked for: a path (or catalog name), UNet weight, text-encoder weight (None = same)."""

    ref: str
    weight: float = 1.0
    te_weight: float | None = None


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A ControlNet unit: model (path or Hub id), image, preprocessor ("none" = already a control map)."""

    model: str
    image: ImageInput
    control_type: str = "none"
    scale: float | None = None
    guidance_start: float = 0.0
    guidance_end: float = 1.0


@dataclass(frozen=True, slots=True)
class IPAdapterRequest:
    """An IP-Adapter: an h94-layout folder (or Hub id), the weights file in it, a reference image."""

    model: str
    image: ImageInput
    weight_name: str = "ip-adapter_sd15.safetensors"
    scale: float = 1.0
    subfolder: str = "models"
    blocks: Mapping[str, Any] | None = None  # diffusers/InstantStyle form: {"up": {"block_0": [0, 1, 0]}}


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A prompt plus optional overrides; the planner fills every ``None``.

    ``model`` is a path (diffusers folder or single ``.safetensors`` file), a catalog name or a Hub id.
    ``config_dir`` names a weightless diffusers config folder for a single-file checkpoint of an
    unusual architecture (see the README). ``preset`` scales the step count (speed, balanced,
    quality); ``auto=False`` turns off the automatic checkpoint choice and LoRA recommendation;
    ``learn=False`` plans without what was learned from the user's history (``--no-learn``);
    ``memory`` forces a memory strategy (none, balanced, sequential, aggressive) instead of the planner's.
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
    controls: tuple[ControlRequest, ...] = ()
    ip_adapters: tuple[IPAdapterRequest, ...] = ()
    init_image: ImageInput = None
    mask: ImageInput = None
    strength: float | None = None
    resize_mode: str | None = None
    mask_blur: int | None = None
    inpaint_full_res: bool = False
    inpaint_padding: int | None = None
    config_dir: str | None = None
    preset: str = "balanced"  # speed | balanced | quality
    auto: bool = True  # False: no automatic checkpoint choice or LoRA recommendation
    learn: bool = True  # False: no learned preferences (the generation is still recorded)
    memory: str | None = None  # none | balanced | sequential | aggressive; None: the planner picks
    # A1111's hires fix: None everywhere and ``hires`` None lets the planner decide (a size far above native)
    hires: bool | None = None
    hires_scale: float | None = None
    hires_resize: tuple[int, int] | None = None  # A1111's "Hires resize" WxH (0: from the other side)
    hires_steps: int | None = None  # 0: the first pass's steps
    hires_upscaler: str | None = None  # "Latent", "Latent (bicubic)", "Lanczos", "Nearest", or a model file
    hires_denoise: float | None = None
    hires_sampler: str | None = None
    hires_prompt: str | None = None
    hires_negative_prompt: str | None = None
    hires_checkpoint: str | None = None  # A1111's "Hires checkpoint": a path or catalog name (same family)
    refiner: str | None = None  # SDXL refiner: a path, a catalog name, or "auto" (a catalogued refiner)
    refiner_switch: float | None = None  # fraction of the schedule where the refiner takes over (0.8)
    variation_seed: int | None = None
    variation_strength: float | None = None
    seed_resize_from: tuple[int, int] | None = None  # draw the noise at WxH (-1/0: off)
    batch_count: int | None = None  # A1111's n_iter: batches of batch_size, seeds running on
    inpainting_fill: str | None = None  # fill | original | latent_noise | latent_nothing; None: original
