"""A1111 API fields for second passes and seeds → :class:`GenerationRequest` fields: the hires fix
(``enable_hr``, ``hr_*``, ``denoising_strength``), variation seeds (``subseed``, ``subseed_strength``,
``seed_resize_from_*``), the SDXL refiner (``refiner_checkpoint``, ``refiner_switch_at``) and ``n_iter``
as the batch count (seeds run on across batches, as A1111's do)."""

from __future__ import annotations

from typing import Any

from .a1111_models import Img2ImgBody, Txt2ImgBody

__all__ = ["pass_fields"]


def pass_fields(body: Txt2ImgBody) -> dict[str, Any]:
    """Request keyword arguments for what ``body`` asks beyond one plain pass (empty when nothing)."""
    out: dict[str, Any] = {}
    if body.n_iter > 1:
        out["batch_count"] = body.n_iter
    if body.enable_hr and not isinstance(body, Img2ImgBody):  # A1111's img2img has no hires fix
        out["hires"] = True
        out["hires_scale"] = body.hr_scale
        out["hires_steps"] = body.hr_second_pass_steps
        if body.hr_upscaler:
            out["hires_upscaler"] = body.hr_upscaler
        if body.hr_resize_x or body.hr_resize_y:
            out["hires_resize"] = (body.hr_resize_x, body.hr_resize_y)
        if body.denoising_strength is not None:
            out["hires_denoise"] = body.denoising_strength
        if body.hr_sampler_name and body.hr_sampler_name != "Use same sampler":
            out["hires_sampler"] = body.hr_sampler_name
        if body.hr_checkpoint_name and body.hr_checkpoint_name != "Use same checkpoint":
            out["hires_checkpoint"] = body.hr_checkpoint_name.rsplit(" [", 1)[0]  # a title's " [hash]"
        if body.hr_prompt:
            out["hires_prompt"] = body.hr_prompt
        if body.hr_negative_prompt:
            out["hires_negative_prompt"] = body.hr_negative_prompt
    if body.subseed_strength:
        out["variation_strength"] = body.subseed_strength
        out["variation_seed"] = None if body.subseed < 0 else body.subseed
    if body.seed_resize_from_w > 0 and body.seed_resize_from_h > 0:
        out["seed_resize_from"] = (body.seed_resize_from_w, body.seed_resize_from_h)
    if body.refiner_checkpoint:
        out["refiner"] = body.refiner_checkpoint.rsplit(" [", 1)[0]  # A1111 titles carry " [hash]"
        if body.refiner_switch_at is not None:
            out["refiner_switch"] = body.refiner_switch_at
    return out
