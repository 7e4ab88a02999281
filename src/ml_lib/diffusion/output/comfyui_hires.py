"""A1111's hires fix as ComfyUI core nodes: the first pass's latent upscaled (``LatentUpscale``), or decoded,
scaled with Lanczos (``ImageScale``) and encoded again, then a second ``KSampler`` at the hires steps with
the hires denoise (ComfyUI runs exactly ``steps`` of a ``steps / denoise`` schedule, as A1111 does; the
denoise written is the one :func:`~.comfyui_steps.ksampler_run` finds for our engine's schedule).

Only what the core nodes do as A1111 does is written: "Latent" (bilinear), "Latent (nearest-exact)",
"Latent (bicubic)" and "Lanczos" at a scale; the antialiased latent modes, "Latent (nearest)", "Nearest",
learned upscalers and "Hires resize" (A1111 crops after upscaling) give no graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..plan import GenerationPlan
from ..samplers import SamplerChoice
from .comfyui_names import to_comfy_sampler

__all__ = ["add_hires", "hires_unexpressed"]

Link = list[Any]
_LATENT_MODES = {
    "Latent": "bilinear",
    "Latent (nearest-exact)": "nearest-exact",
    "Latent (bicubic)": "bicubic",
}
_IMAGE_MODES = {"Lanczos": "lanczos"}
_MAX_RESOLUTION = 16384  # nodes.py MAX_RESOLUTION, the bound of LatentUpscale's and ImageScale's sizes


def _second_sampler(plan: GenerationPlan) -> tuple[str, str] | None:
    h = plan.hires
    assert h is not None
    return to_comfy_sampler(SamplerChoice(h.sampler or plan.sampler, h.schedule or plan.schedule))


def hires_unexpressed(plan: GenerationPlan) -> str | None:
    """Why the core nodes cannot write ``plan``'s hires fix as A1111 runs it, or None."""
    h = plan.hires
    if h is None:
        return None
    if h.resize_width or h.resize_height:
        return "the hires fix's resize (A1111 crops after upscaling) is not written into ComfyUI graphs"
    if h.upscaler not in _LATENT_MODES and h.upscaler not in _IMAGE_MODES:
        return f"hires upscaler {h.upscaler!r} has no ComfyUI core node that works as A1111's"
    if _second_sampler(plan) is None:
        return f"ComfyUI has no sampler {h.sampler} for the hires pass"
    width, height = int(plan.width * h.scale), int(plan.height * h.scale)
    if not (max(width, height) <= _MAX_RESOLUTION and 1 <= (h.steps or plan.steps) <= 10000):
        return "the hires pass's size or steps are outside ComfyUI's node ranges"
    return None


def add_hires(
    add: Callable[..., str],
    plan: GenerationPlan,
    seed: int,
    first: Link,
    nodes: tuple[Link, Link, Link],
    run: tuple[int, float],
    conditioning: Callable[[], tuple[Link, Link, float]],
    first_vae: Link | None = None,
) -> Link:
    """The hires pass after the ``first`` pass's latent; ``nodes`` are the pass's (model, clip, vae) links
    (a hires checkpoint's, or the first pass's), ``run`` the KSampler's (steps, denoise) that run our
    engine's hires steps, ``conditioning`` gives the pass's (positive, negative) links (the hires prompts
    encoded, ControlNets applied) and its KSampler CFG; ``first_vae`` decodes the first pass for an image
    upscaler (None: ``nodes``' VAE). Returns the final latent."""
    h = plan.hires
    assert h is not None
    model, _clip, vae = nodes
    width, height = int(plan.width * h.scale), int(plan.height * h.scale)
    if h.upscaler in _LATENT_MODES:
        upscaled: Link = [
            add(
                "LatentUpscale",
                "Hires upscale",
                samples=first,
                upscale_method=_LATENT_MODES[h.upscaler],
                width=width,
                height=height,
                crop="disabled",
            ),
            0,
        ]
    else:
        decoder = vae if first_vae is None else first_vae
        image = add("VAEDecode", "VAE Decode (first pass)", samples=first, vae=decoder)
        scaled = add(
            "ImageScale",
            "Hires upscale",
            image=[image, 0],
            upscale_method=_IMAGE_MODES[h.upscaler],
            width=width,
            height=height,
            crop="disabled",
        )
        upscaled = [add("VAEEncode", "VAE Encode (hires)", pixels=[scaled, 0], vae=vae), 0]
    positive, negative, cfg = conditioning()
    sampler = _second_sampler(plan)
    assert sampler is not None  # checked by hires_unexpressed
    second = add(
        "KSampler",
        "Hires pass",
        model=model,
        seed=seed,
        steps=run[0],
        cfg=cfg,
        sampler_name=sampler[0],
        scheduler=sampler[1],
        positive=positive,
        negative=negative,
        latent_image=upscaled,
        denoise=run[1],
    )
    return [second, 0]
