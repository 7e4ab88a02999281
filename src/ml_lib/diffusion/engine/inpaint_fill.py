"""A1111's latent "Masked content" modes for inpainting: ``latent_noise`` and ``latent_nothing``.

A1111 encodes the (filled) init image, then replaces its latents under the mask, rounded to the latent
grid, by seeded unit noise (``latent noise``, the seeds' own noise) or by zeros (``latent nothing``); the
sampler starts from those latents noised to the strength's timestep. Here the latents are computed the same
way and handed to diffusers' inpainting pipeline as its ``image`` (a 4-channel tensor is taken as latents),
with ``masked_image_latents`` for what an inpainting UNet is conditioned on.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from ..errors import RequestError
from ..plan import GenerationPlan
from .preview import to_pipeline_latents

__all__ = ["LATENT_FILLS", "latent_fill"]

LATENT_FILLS = ("latent_noise", "latent_nothing")


def _encode(vae: Any, pixels: torch.Tensor) -> torch.Tensor:
    # the compute dtype: with the CPU policy the weights are stored fp16 and each layer computes in fp32
    mean = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mode()
    return to_pipeline_latents(vae, mean.float())


def latent_fill(
    pipe: Any, plan: GenerationPlan, kwargs: dict[str, Any], seeds: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """``kwargs`` for the inpainting call of the images of ``seeds`` (default: all the plan's) with the
    latent masked-content mode of ``plan`` applied (unchanged for the other modes); RequestError when the
    pipeline cannot take latents (ControlNet inpainting)."""
    seeds = plan.seeds if seeds is None else seeds
    fill = plan.init.inpainting_fill if plan.init is not None else "original"
    if fill not in LATENT_FILLS or "mask_image" not in kwargs:
        return kwargs
    if "masked_image_latents" not in inspect.signature(pipe.__call__).parameters:
        raise RequestError(
            f"Masked content {fill.replace('_', ' ')!r} is not available with ControlNet inpainting; "
            "use 'fill' or 'original'."
        )
    width, height = kwargs["width"], kwargs["height"]
    with torch.inference_mode():
        pixels = pipe.image_processor.preprocess(kwargs["image"], height=height, width=width).float()
        mask = pipe.mask_processor.preprocess(kwargs["mask_image"], height=height, width=width).float()
        latents = _encode(pipe.vae, pixels)
        # A1111: the mask resized to the latent grid (Pillow's default bicubic) and rounded (mask_round).
        grid = kwargs["mask_image"].convert("L").resize((latents.shape[3], latents.shape[2]))
        keep = 1.0 - torch.from_numpy(np.asarray(grid, dtype=np.float32) / 255).round()
        keep = keep.to(latents)[None, None]
        batch = []
        for seed in seeds:
            if fill == "latent_noise":  # the same tensor the sampler's first noise of this seed is
                noise = torch.randn(latents.shape[1:], generator=torch.Generator("cpu").manual_seed(seed))
                batch.append(latents[0] * keep[0] + noise.to(latents) * (1 - keep[0]))
            else:
                batch.append(latents[0] * keep[0])
        filled = torch.stack(batch)
        unet = getattr(pipe, "unet", None)
        if unet is not None and unet.config.in_channels == 9:  # conditioned on the masked original
            masked = _encode(pipe.vae, pixels * (mask < 0.5))
        else:  # a 4-channel UNet ignores it; diffusers still wants a tensor of latent shape
            masked = filled * keep
    return {**kwargs, "image": filled, "masked_image_latents": masked.expand(len(seeds), -1, -1, -1)}
