"""The hires fix's second pass (AUTOMATIC1111's ``sample_hr_pass``) on diffusers' img2img.

Latent upscalers interpolate the first pass's latents (``torch.nn.functional.interpolate`` with A1111's
mode and antialias); image upscalers decode, resize the pictures (Lanczos, Nearest, or a learned model
through spandrel) and encode them again. The latents are cropped as A1111 crops them for "Hires resize",
then img2img runs exactly the hires steps (see :func:`..planning.hires.hires_schedule`) with fresh
generators seeded with each image's seed, as A1111's new ``ImageRNG`` for the second pass (with the
variation seed and seed resize when the plan has them, :mod:`.img2img_noise`).

With a hires checkpoint (A1111's "Hires checkpoint") the pass runs on that model's img2img pipeline, as
A1111 reloads the weights before ``sample_hr_pass``: image upscalers decode with the first model's VAE and
encode with the second's, the second model's text encoders condition the pass, its scheduler config and
prediction type build the sampler, and its VAE decodes the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ModelUnreadableError, RequestError
from ..plan import GenerationPlan, HiresPlan
from ..planning.hires import LATENT_UPSCALERS, HiresTarget, hires_schedule, hires_target
from ..prompt_schedule import PromptSchedule
from .compose import scheduled_conditioning_hooks
from .hires_refiner import hires_choice, hires_model
from .img2img_noise import image_pass_noise, with_noise
from .schedule import ScheduledConditioning
from .schedulers import make_scheduler
from .variants import pipeline_view

if TYPE_CHECKING:
    from PIL import Image

    from .pool import LoadedPipeline

__all__ = ["crop_latents", "hires_pass", "upscale_image", "upscale_latents"]

Decode = Callable[[Any, torch.Tensor], list["Image.Image"]]
Encode = Callable[[Any, GenerationPlan], dict[str, torch.Tensor]]
Schedule = Callable[[PromptSchedule], ScheduledConditioning]


def crop_latents(samples: torch.Tensor, target: HiresTarget, factor: int = 8) -> torch.Tensor:
    """A1111's centred crop for "Hires resize" (a no-op otherwise): its truncation counts latent pixels of
    8 image pixels; ``factor`` is the VAE's (8 for every real Stable Diffusion VAE)."""
    ty, tx = target.truncate_y * 8 // factor, target.truncate_x * 8 // factor
    return samples[
        :, :, ty // 2 : samples.shape[2] - (ty + 1) // 2, tx // 2 : samples.shape[3] - (tx + 1) // 2
    ]


def upscale_latents(
    latents: torch.Tensor, target: HiresTarget, upscaler: str, factor: int = 8
) -> torch.Tensor:
    """The latents interpolated to the target with A1111's latent mode ``upscaler``, then cropped
    (``factor``: image pixels per latent pixel)."""
    mode = LATENT_UPSCALERS[upscaler]
    size = (target.upscale_height // factor, target.upscale_width // factor)
    out = torch.nn.functional.interpolate(latents, size=size, mode=mode.mode, antialias=mode.antialias)
    return crop_latents(out, target, factor)


def _model_upscale(image: Image.Image, scale: float, model: Any) -> Image.Image:
    """A1111's ``Upscaler.upscale``: the model up to three times until the size is reached, then Lanczos."""
    from PIL import Image as PILImage

    dest_w, dest_h = int((image.width * scale) // 8 * 8), int((image.height * scale) // 8 * 8)
    for i in range(3):
        if image.width >= dest_w and image.height >= dest_h and (i > 0 or scale != 1):
            break
        shape = image.size
        image = model(image)
        if shape == image.size:
            break
    if image.size != (dest_w, dest_h):
        image = image.resize((dest_w, dest_h), resample=PILImage.Resampling.LANCZOS)
    return image


def upscale_image(
    image: Image.Image, target: HiresTarget, upscaler: str, model: Callable[[Image.Image], Image.Image] | None
) -> Image.Image:
    """A1111's ``resize_image(0, …, upscaler_name)``: the upscaler for the scale, then Lanczos to size."""
    from PIL import Image as PILImage

    w, h = target.upscale_width, target.upscale_height
    if (image.width, image.height) != (w, h) and upscaler != "None":
        scale = max(w / image.width, h / image.height)
        if scale > 1.0:
            size = (int(image.width * scale), int(image.height * scale))
            if model is not None:
                image = _model_upscale(image, scale, model)
            elif upscaler == "Nearest":
                image = image.resize(size, resample=PILImage.Resampling.NEAREST)
            else:
                image = image.resize(size, resample=PILImage.Resampling.LANCZOS)
    if image.size != (w, h):
        image = image.resize((w, h), resample=PILImage.Resampling.LANCZOS)
    return image


def _encode_images(pipe: Any, images: list[Image.Image]) -> torch.Tensor:
    """The VAE latents of ``images`` (the distribution's mode: A1111 samples it with its global RNG, whose
    draw is not reproducible; sampling with the image's seed would repeat the img2img noise), scaled as
    diffusers' SDXL img2img scales them (latents mean/std when the VAE has them)."""
    import numpy as np

    vae = pipe.vae
    dtype = vae.dtype  # the compute dtype (weights may be stored narrower)
    arrays = [np.asarray(im.convert("RGB"), dtype=np.float32) / 127.5 - 1.0 for im in images]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(vae.device, dtype)
    with torch.inference_mode():
        samples = vae.encode(x).latent_dist.mode()
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        m = torch.tensor(mean).view(1, -1, 1, 1).to(samples)
        s = torch.tensor(std).view(1, -1, 1, 1).to(samples)
        return (samples - m) * vae.config.scaling_factor / s
    return samples * vae.config.scaling_factor


def _upscaled(
    view: Any,
    latents: torch.Tensor,
    plan: GenerationPlan,
    target: HiresTarget,
    decode: Decode,
    first: Any,
) -> torch.Tensor:
    """The first pass's latents upscaled (latent modes) or decoded by ``first`` (the first pass's
    pipeline), upscaled and encoded by ``view`` (image modes), cropped to the second pass's size."""
    hires = plan.hires
    assert hires is not None
    factor = int(view.vae_scale_factor)
    if hires.upscaler in LATENT_UPSCALERS and hires.upscaler_path is None:
        return upscale_latents(latents, target, hires.upscaler, factor)
    model = _load_upscaler(hires) if hires.upscaler_path else None
    images = [upscale_image(im, target, hires.upscaler, model) for im in decode(first, latents)]
    # The encoder floors odd sizes; crop to whole latent pixels first so the crop below stays A1111's.
    lw, lh = target.upscale_width // factor * factor, target.upscale_height // factor * factor
    images = [im.crop((0, 0, lw, lh)) for im in images]
    return crop_latents(_encode_images(view, images), target, factor)


def _load_upscaler(hires: HiresPlan) -> Callable[[Image.Image], Image.Image]:
    """A learned upscaler (ESRGAN, SwinIR, …) from a .safetensors file through spandrel, as a PIL → PIL call."""
    try:
        from spandrel import ModelLoader
    except ImportError as exc:
        raise RequestError(
            f"The hires upscaler {hires.upscaler!r} is a model file, which needs spandrel: "
            'pip install "ml-lib[upscalers]" (spandrel needs torchvision).'
        ) from exc
    try:
        descriptor = ModelLoader().load_from_file(str(hires.upscaler_path))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnreadableError(f"Cannot load the upscaler {hires.upscaler_path}: {exc}") from exc
    descriptor.eval()

    def run(image: Image.Image) -> Image.Image:
        import numpy as np
        from PIL import Image as PILImage

        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[
            None
        ]
        with torch.inference_mode():
            y = descriptor(x)[0].clamp(0, 1)
        return PILImage.fromarray((y.permute(1, 2, 0).numpy() * 255.0).round().astype("uint8"))

    return run


def _conditioning(
    loaded: LoadedPipeline,
    view: Any,
    plan: GenerationPlan,
    base_embeds: dict[str, torch.Tensor] | None,
    encode: Encode,
    schedule: Schedule,
) -> tuple[dict[str, torch.Tensor], AbstractContextManager[None]]:
    """The second pass's embedding arguments and the hooks that switch them call by call: its own prompt
    schedule (A1111's ``hr_c``/``hr_uc``) when the plan has one, else its prompts as written (the first
    pass's embeddings when they are the same text and ``base_embeds`` are given: the same model's)."""
    hires = plan.hires
    assert hires is not None
    if hires.prompt_schedule is not None:
        scheduled = schedule(hires.prompt_schedule)
        hooks = scheduled_conditioning_hooks(view, scheduled, cfg_scale=plan.cfg_scale)
        return scheduled.pipeline_kwargs(cfg=plan.cfg_scale > 1.0), hooks
    prompt, negative = hires.prompt or plan.prompt, hires.negative_prompt or plan.negative_prompt
    if base_embeds is not None and (prompt, negative) == (plan.prompt, plan.negative_prompt):
        return base_embeds, nullcontext()
    replaced = dataclasses.replace(plan, prompt=prompt, negative_prompt=negative)
    return encode(loaded.pipe, replaced), nullcontext()


def hires_pass(
    loaded: LoadedPipeline,
    plan: GenerationPlan,
    latents: torch.Tensor,
    seeds: tuple[int, ...],
    *,
    base_embeds: dict[str, torch.Tensor] | None,
    encode: Encode,
    schedule: Schedule,
    decode: Decode,
    step_end: Callable[..., dict[str, Any]],
    device: torch.device,
    subseeds: tuple[int, ...] = (),
    nets: tuple[Any, ...] = (),
    extra: dict[str, Any] | None = None,
    denoising_end: float | None = None,
    first: Any = None,
) -> torch.Tensor:
    """The second pass of ``plan``'s hires fix on a batch's first-pass ``latents``; returns its latents.

    ``loaded`` is the model the pass runs on (the hires checkpoint's, or the first pass's); ``first`` the
    first pass's pipeline, whose VAE decodes for an image upscaler (None: ``loaded``'s). ``encode``
    encodes a plan's prompts as written with a pipeline, ``schedule`` a prompt schedule (reusing the
    texts this model encoded); ``base_embeds`` are the first pass's embeddings (None when ``loaded`` is
    another model); ``subseeds`` are the batch's variation seeds; ``nets`` the plan's ControlNet modules
    and ``extra`` their call arguments for the second pass (control images at its size) with the
    IP-Adapter embeddings; ``denoising_end`` stops it where a refiner takes over (:mod:`.hires_refiner`)."""
    hires = plan.hires
    assert hires is not None
    target = hires_target(plan.width, plan.height, hires)
    view = pipeline_view(loaded, "img2img", tuple(u.model for u in plan.controls), nets)
    upscaled = _upscaled(view, latents, plan, target, decode, view if first is None else first)
    total, strength = hires_schedule(plan.steps, hires)
    embeds, hooks = _conditioning(loaded, view, plan, base_embeds, encode, schedule)
    config = loaded.base_scheduler_config or dict(loaded.pipe.scheduler.config)
    scheduler = make_scheduler(hires_choice(plan), config, hires_model(plan).prediction_type)
    if plan.variation is not None:  # A1111's hires ImageRNG: the variation (and seed resize) again
        shape = (upscaled.shape[1], upscaled.shape[2], upscaled.shape[3])
        noise = image_pass_noise(plan, shape, seeds, subseeds, int(view.vae_scale_factor))
        scheduler = with_noise(scheduler, noise)
    previous = view.scheduler
    view.scheduler = scheduler
    try:
        with hooks:
            return view(
                **embeds,
                **(extra or {}),
                **({} if denoising_end is None else {"denoising_end": denoising_end}),
                image=upscaled.to(device),
                strength=strength,
                num_inference_steps=total,
                guidance_scale=plan.cfg_scale,
                generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
                output_type="latent",
                callback_on_step_end=step_end,
            ).images
    finally:
        view.scheduler = previous
