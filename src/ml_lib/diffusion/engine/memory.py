"""Apply a plan's memory strategy to a loaded pipeline through diffusers' own APIs.

| strategy   | CUDA / MPS                                            | CPU (no accelerator hooks work there) |
|------------|-------------------------------------------------------|---------------------------------------|
| none       | —                                                     | —                                     |
| balanced   | model CPU offload, VAE slicing                        | VAE slicing, UNet fp8 storage         |
| sequential | group offloading, leaf level (CUDA streams), slicing  | balanced + VAE tiling                 |
| aggressive | sequential + VAE tiling, attention slicing, UNet fp8  | sequential + attention slicing        |

UNet fp8 storage is float8_e4m3fn weights computed in the pipeline's dtype: diffusers' layerwise casting on
an accelerator, and on a CPU the storage hook of ``engine/storage.py``, which converts once and never
rewrites the stored weights (diffusers' hook recasts after every forward, which costs a CPU more than fp8
saves).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ..errors import PlanError
from .device import torch_dtype

__all__ = ["STRATEGIES", "TILE_PX", "apply_strategy", "stronger_strategy", "tile_vae"]

log = logging.getLogger(__name__)

STRATEGIES = ("none", "balanced", "sequential", "aggressive")
#: Edge of a VAE decode tile, in pixels: diffusers' default is the VAE's native size (1024 for SDXL), which
#: never tiles an image of that size (an SDXL 1024² decode holds ~3.9 GB in fp32; in 512² tiles, a quarter).
TILE_PX = 512


def tile_vae(vae: Any) -> None:
    """Turn on ``vae``'s tiled decode, in tiles of at most :data:`TILE_PX` pixels (diffusers' own tiling)."""
    vae.enable_tiling()
    size = getattr(vae, "tile_sample_min_size", None)
    if isinstance(size, int) and size > TILE_PX:
        vae.tile_sample_min_size = TILE_PX
        vae.tile_latent_min_size = TILE_PX // 2 ** (len(vae.config.block_out_channels) - 1)


def _fp8_unet(pipe: Any, compute: str | None) -> None:
    dtype = torch_dtype(compute) if compute is not None else next(pipe.unet.parameters()).dtype
    pipe.unet.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)


def _accelerator(pipe: Any, strategy: str, device: str, compute: str | None) -> list[str]:
    done = ["vae slicing"]
    pipe.vae.enable_slicing()
    if strategy == "balanced":
        pipe.enable_model_cpu_offload(device=device)
        return ["model cpu offload", *done]
    if strategy == "aggressive":
        _fp8_unet(pipe, compute)
        done.append("unet fp8 storage")
    pipe.to("cpu")
    pipe.enable_group_offload(
        onload_device=torch.device(device),
        offload_device=torch.device("cpu"),
        offload_type="leaf_level",
        use_stream=device.startswith("cuda"),
    )
    done.insert(0, "group offload (leaf)")
    if strategy == "aggressive":
        tile_vae(pipe.vae)
        pipe.enable_attention_slicing()
        done += ["vae tiling", "attention slicing"]
    return done


def _cpu(pipe: Any, strategy: str, compute: str | None) -> list[str]:
    from .storage import store_unet_fp8

    pipe.vae.enable_slicing()
    store_unet_fp8(pipe, compute or str(next(pipe.unet.parameters()).dtype).removeprefix("torch."))
    done = ["vae slicing", "unet fp8 storage"]
    if strategy in ("sequential", "aggressive"):
        tile_vae(pipe.vae)
        done.append("vae tiling")
    if strategy == "aggressive":
        pipe.enable_attention_slicing()
        done.append("attention slicing")
    return done


def apply_strategy(pipe: Any, strategy: str, device: str, compute: str | None = None) -> tuple[str, ...]:
    """Prepare ``pipe`` (freshly loaded, on ``device``) for ``strategy``; the techniques applied, in order.

    ``compute`` is the dtype layers compute in (default: the dtype the UNet was loaded in)."""
    if strategy not in STRATEGIES:
        raise PlanError(f"Memory strategy {strategy!r} is not one of {', '.join(STRATEGIES)}; re-plan it.")
    if strategy == "none":
        return ()
    done = _cpu(pipe, strategy, compute) if device == "cpu" else _accelerator(pipe, strategy, device, compute)
    log.info("memory strategy %s: %s", strategy, ", ".join(done))
    return tuple(done)


def stronger_strategy(strategy: str) -> str | None:
    """The next strategy up (the recovery ladder's next rung); None after ``aggressive``."""
    index = STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES) - 1
    return STRATEGIES[index + 1] if index + 1 < len(STRATEGIES) else None
