"""Live previews: the latents of a running generation shown as a small PNG without running the VAE decoder.

Like A1111's "Approx cheap" preview, a latent is mapped to RGB by one linear map per pixel cell. Instead of
factors written down for one latent space, the map is fitted once per loaded pipeline from its own VAE
encoder (flat colour patches → latents → least squares), so it holds for any VAE, the demo model's too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["LatentRGB", "fit_latent_rgb", "preview_png"]

_BLOCKS = 8  # colour patches per side of each fitting image
_CELLS = 3  # latent cells per patch side; only the centre cell (away from patch edges) is used
_MAX_SIDE = 256  # the preview's longer side at most (it is upscaled from the latent grid)


@dataclass(frozen=True, slots=True)
class LatentRGB:
    """``rgb = latents · weight + bias`` per latent cell (RGB in 0..1); ``scale`` pixels per cell."""

    weight: torch.Tensor  # (channels, 3)
    bias: torch.Tensor  # (3,)
    scale: int


def _latent_scaling(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``z`` (the encoder's mean) as the pipeline's latents hold it (scaled, SDXL-style mean/std applied)."""
    config = vae.config  # type: ignore[attr-defined]
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        m = torch.tensor(mean).view(1, -1, 1, 1).to(z)
        s = torch.tensor(std).view(1, -1, 1, 1).to(z)
        return (z - m) * config.scaling_factor / s
    return z * config.scaling_factor


def fit_latent_rgb(vae: torch.nn.Module) -> LatentRGB:
    """Fit the linear latent → RGB map of ``vae``: two images of random flat patches are encoded and the
    centre latent cell of each patch is regressed on the patch's colour."""
    config = vae.config  # type: ignore[attr-defined]
    scale = 2 ** (len(config.block_out_channels) - 1)
    side = _BLOCKS * _CELLS * scale
    gen = torch.Generator("cpu").manual_seed(0)
    colours = torch.rand(2, 3, _BLOCKS, _BLOCKS, generator=gen)
    pixels = colours.repeat_interleave(_CELLS * scale, 2).repeat_interleave(_CELLS * scale, 3)
    param = next(iter(vae.parameters()))
    with torch.inference_mode():
        dist = vae.encode(pixels.to(param.device, param.dtype) * 2 - 1).latent_dist  # type: ignore[operator]
        z = _latent_scaling(vae, dist.mode().float().cpu())
    assert z.shape[-1] == side // scale
    centre = z[:, :, 1::_CELLS, 1::_CELLS]  # (2, C, B, B)
    x = centre.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    y = colours.permute(0, 2, 3, 1).reshape(-1, 3)
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()).solution.float()
    return LatentRGB(solution[:-1], solution[-1], scale)


def preview_png(loaded: LoadedPipeline, latents: torch.Tensor) -> bytes:
    """A PNG of the first image of ``latents`` (B, C, h, w) through the pipeline's latent → RGB map (fitted
    and kept on ``loaded`` the first time), upscaled to at most 256 pixels on its longer side."""
    from PIL import Image

    if not isinstance(loaded.preview_map, LatentRGB):
        loaded.preview_map = fit_latent_rgb(loaded.pipe.vae)
    rgb_map = loaded.preview_map
    with torch.inference_mode():
        cells = latents[0].detach().float().cpu()
        if cells.shape[0] != rgb_map.weight.shape[0]:  # e.g. an inpainting UNet's concatenated input
            cells = cells[: rgb_map.weight.shape[0]]
        rgb = torch.einsum("chw,cd->hwd", cells, rgb_map.weight) + rgb_map.bias
        array = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(array, "RGB")
    h, w = array.shape[:2]
    factor = min(rgb_map.scale, max(1, _MAX_SIDE // max(h, w)))
    if factor > 1:
        image = image.resize((w * factor, h * factor), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
