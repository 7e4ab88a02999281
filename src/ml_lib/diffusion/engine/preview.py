"""Live previews: the latents of a running generation shown as a small PNG, cheaply.

A small VAE (decoder up to :data:`SMALL_DECODER` parameters, like the demo model's or a TAESD) decodes
the first image of the batch outright: that costs less than a denoising step. For a full-size VAE, like
A1111's "Approx cheap" preview, a latent is mapped to RGB by one linear map per pixel cell. Instead of
factors written down for one latent space, the map is fitted once per loaded pipeline from its own VAE
(flat colour patches → encoder → latents → decoder → least squares from latent to drawn colour), so it
holds for any VAE, the demo model's too. The fit costs one encode and one decode of a 24-cell-square image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["SMALL_DECODER", "LatentRGB", "fit_latent_rgb", "preview_png", "to_pipeline_latents"]

#: Decoder parameters up to which a preview is the VAE's own decode (the demo's has 0.5 M, SD's 49 M).
SMALL_DECODER = 5_000_000

_BLOCKS = 8  # colour patches per side of each fitting image
_CELLS = 3  # latent cells per patch side; only the centre cell (away from patch edges) is used
_MAX_SIDE = 256  # the preview's longer side at most (it is upscaled from the latent grid)


@dataclass(frozen=True, slots=True)
class LatentRGB:
    """``rgb = latents · weight + bias`` per latent cell (RGB in 0..1); ``scale`` pixels per cell."""

    weight: torch.Tensor  # (channels, 3)
    bias: torch.Tensor  # (3,)
    scale: int


def to_pipeline_latents(vae: Any, z: torch.Tensor) -> torch.Tensor:
    """``z`` (the encoder's mean) as the pipeline's latents hold it (scaled, SDXL-style mean/std applied)."""
    config = vae.config
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        m = torch.tensor(mean).view(1, -1, 1, 1).to(z)
        s = torch.tensor(std).view(1, -1, 1, 1).to(z)
        return (z - m) * config.scaling_factor / s
    return z * config.scaling_factor


def fit_latent_rgb(vae: Any) -> LatentRGB:
    """Fit the linear latent → RGB map of ``vae``: two images of random flat patches are encoded and
    decoded again, and the centre latent cell of each patch is regressed on what the decoder draws there
    (not on the input colour: a VAE trained on a narrow world may not reproduce every colour)."""
    config = vae.config
    scale = 2 ** (len(config.block_out_channels) - 1)
    gen = torch.Generator("cpu").manual_seed(0)
    colours = torch.rand(2, 3, _BLOCKS, _BLOCKS, generator=gen)
    pixels = colours.repeat_interleave(_CELLS * scale, 2).repeat_interleave(_CELLS * scale, 3)
    with torch.inference_mode():  # the compute dtype (weights may be stored narrower)
        mean = vae.encode(pixels.to(vae.device, vae.dtype) * 2 - 1).latent_dist.mode()
        drawn = vae.decode(mean).sample.float().cpu()
        z = to_pipeline_latents(vae, mean.float().cpu())
    centre = z[:, :, 1::_CELLS, 1::_CELLS]  # (2, C, B, B)
    target = torch.nn.functional.avg_pool2d((drawn / 2 + 0.5).clamp(0, 1), scale)[:, :, 1::_CELLS, 1::_CELLS]
    x = centre.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    y = target.permute(0, 2, 3, 1).reshape(-1, 3)
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double()).solution.float()
    return LatentRGB(solution[:-1], solution[-1], scale)


def _decode_small(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """(h, w, 3) in 0..1: the first latent image decoded by ``vae`` itself."""
    config = vae.config
    z = latents[:1].to(vae.device, vae.dtype)  # the compute dtype (weights may be stored narrower)
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        z = z * torch.tensor(std).view(1, -1, 1, 1).to(z) / config.scaling_factor
        z = z + torch.tensor(mean).view(1, -1, 1, 1).to(z)
    else:
        z = z / config.scaling_factor
    image = vae.decode(z).sample[0].float().cpu()
    return (image / 2 + 0.5).permute(1, 2, 0)


def _is_small(vae: Any) -> bool:
    decoder = getattr(vae, "decoder", vae)
    return sum(p.numel() for p in decoder.parameters()) <= SMALL_DECODER


def preview_png(loaded: LoadedPipeline, latents: torch.Tensor) -> bytes:
    """A PNG of the first image of ``latents`` (B, C, h, w): decoded by a small VAE, else through the
    pipeline's latent → RGB map (fitted and kept on ``loaded`` the first time) and upscaled to at most
    256 pixels on its longer side."""
    from PIL import Image

    vae = loaded.pipe.vae
    if loaded.preview_map is None:
        loaded.preview_map = "decode" if _is_small(vae) else fit_latent_rgb(vae)
    rgb_map = loaded.preview_map
    with torch.inference_mode():
        if isinstance(rgb_map, LatentRGB):
            cells = latents[0].detach().float().cpu()[: rgb_map.weight.shape[0]]
            rgb = torch.einsum("chw,cd->hwd", cells, rgb_map.weight) + rgb_map.bias
            scale = rgb_map.scale
        else:
            rgb, scale = _decode_small(vae, latents.detach()), 1
        array = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(array, "RGB")
    h, w = array.shape[:2]
    factor = min(scale, max(1, _MAX_SIDE // max(h, w)))
    if factor > 1:
        image = image.resize((w * factor, h * factor), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
