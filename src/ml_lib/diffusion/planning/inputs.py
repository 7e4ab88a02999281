"""Planning of image inputs: img2img/inpaint options, ControlNet units and IP-Adapters (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import RequestError
from ..plan import BlockScale, ControlUse, Decision, InitImage, IPAdapterUse, ResolvedRequest, Source
from ..request import GenerationRequest

__all__ = [
    "INPAINTING_FILLS",
    "MAX_ADAPTER_SCALE",
    "RESIZE_MODES",
    "plan_controls",
    "plan_init",
    "plan_ip_adapters",
]

RESIZE_MODES = ("just_resize", "crop_and_resize", "resize_and_fill")
#: What the masked area starts from, A1111's "Masked content" (its img2img ``inpainting_fill`` 0..3).
INPAINTING_FILLS = ("fill", "original", "latent_noise", "latent_nothing")
#: ControlNet and IP-Adapter scales (and IP-Adapter block scales) lie in 0..MAX_ADAPTER_SCALE.
MAX_ADAPTER_SCALE = 2.0
_DEFAULT_STRENGTH = 0.75  # A1111's default denoising strength
_DEFAULT_MASK_BLUR = 4
_DEFAULT_PADDING = 32


def _unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise RequestError(f"{name} must be between 0 and 1, got {value!r}.")


def plan_init(request: GenerationRequest, refs: ResolvedRequest, out: list[Decision]) -> InitImage | None:
    """The img2img/inpaint part of the plan, or None for txt2img."""
    if refs.init_image is None:
        if refs.mask is not None:
            raise RequestError("A mask needs an init image (--init-image) to inpaint.")
        return None
    strength = request.strength
    if strength is None:
        strength = _DEFAULT_STRENGTH
        out.append(Decision("strength", strength, Source.PROFILE, "A1111's default denoising strength"))
    else:
        out.append(Decision("strength", strength, Source.USER, "set by the user"))
    _unit("strength", strength)
    mode = request.resize_mode or "just_resize"
    if mode not in RESIZE_MODES:
        raise RequestError(f"Unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}.")
    blur = _DEFAULT_MASK_BLUR if request.mask_blur is None else request.mask_blur
    padding = _DEFAULT_PADDING if request.inpaint_padding is None else request.inpaint_padding
    if blur < 0 or padding < 0:
        raise RequestError("Mask blur and inpaint padding must not be negative.")
    fill = request.inpainting_fill or "original"
    if fill not in INPAINTING_FILLS:
        raise RequestError(f"Unknown masked content {fill!r}; choose one of {', '.join(INPAINTING_FILLS)}.")
    if fill != "original" and refs.mask is None:
        raise RequestError(f"Masked content {fill!r} needs a mask to inpaint.")
    return InitImage(
        refs.init_image, float(strength), mode, refs.mask, blur, request.inpaint_full_res, padding, fill
    )


def plan_controls(
    request: GenerationRequest, refs: ResolvedRequest, out: list[Decision]
) -> tuple[ControlUse, ...]:
    """ControlNet units with their conditioning scale (the control type's recommended one by default)."""
    if not request.controls:
        return ()
    from ..imaging.preprocess import control_types, recommended_scale

    units = []
    for i, (req, unit) in enumerate(zip(request.controls, refs.controls, strict=True)):
        kind = req.control_type
        if kind != "none" and kind not in control_types():
            raise RequestError(f"Unknown control type {kind!r}; known: none, {', '.join(control_types())}.")
        if req.scale is None:
            scale = recommended_scale(kind) if kind != "none" else 1.0
            out.append(Decision(f"controls[{i}].scale", scale, Source.PROFILE, f"recommended for {kind}"))
        else:
            scale = req.scale
            out.append(Decision(f"controls[{i}].scale", scale, Source.USER, "set by the user"))
        if not 0.0 <= scale <= MAX_ADAPTER_SCALE:
            raise RequestError(
                f"ControlNet scale must be between 0 and {MAX_ADAPTER_SCALE:g}, got {scale!r}."
            )
        _unit("control guidance start", req.guidance_start)
        _unit("control guidance end", req.guidance_end)
        if req.guidance_start >= req.guidance_end:
            raise RequestError("Control guidance start must be before its end.")
        units.append(
            ControlUse(
                unit.model, unit.image, kind, float(scale), req.guidance_start, req.guidance_end, unit.name,
                unit.config_dir,
            )
        )  # fmt: skip
    return tuple(units)


def _blocks(blocks: Mapping[str, Any] | None) -> tuple[BlockScale, ...]:
    """diffusers' per-block scale mapping (``{"down": {"block_2": [0, 1]}, "mid": 1, …}``) as BlockScales."""
    if not blocks:
        return ()
    out = []
    for part, value in blocks.items():
        if part not in ("down", "mid", "up"):
            raise RequestError(f"IP-Adapter block scales use 'down', 'mid' and 'up', not {part!r}.")
        items = {"": value} if part == "mid" else value
        if not isinstance(items, Mapping):
            raise RequestError(f"IP-Adapter block scales for {part!r} must map block names to scales.")
        for block, scales in items.items():
            values = tuple(float(v) for v in (scales if isinstance(scales, (list, tuple)) else [scales]))
            if any(not 0.0 <= v <= MAX_ADAPTER_SCALE for v in values):
                raise RequestError(
                    f"IP-Adapter block scales must be between 0 and {MAX_ADAPTER_SCALE:g}, got {values}."
                )
            out.append(BlockScale(f"{part}.{block}".rstrip("."), values))
    return tuple(out)


def plan_ip_adapters(request: GenerationRequest, refs: ResolvedRequest) -> tuple[IPAdapterUse, ...]:
    """IP-Adapters as requested (scale 0..2, optional per-block scales)."""
    uses = []
    for req, unit in zip(request.ip_adapters, refs.ip_adapters, strict=True):
        if not 0.0 <= req.scale <= MAX_ADAPTER_SCALE:
            raise RequestError(
                f"IP-Adapter scale must be between 0 and {MAX_ADAPTER_SCALE:g}, got {req.scale!r}."
            )
        blocks = _blocks(req.blocks)
        uses.append(
            IPAdapterUse(unit.model, unit.weight_name, unit.image, float(req.scale), unit.subfolder, blocks)
        )
    return tuple(uses)
