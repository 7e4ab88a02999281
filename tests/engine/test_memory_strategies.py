"""Memory strategies applied through diffusers on CPU, and the pool keyed by strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml_lib.diffusion.engine.memory import apply_strategy
from ml_lib.diffusion.engine.pool import PipelinePool
from ml_lib.diffusion.errors import PlanError
from ml_lib.diffusion.resolve.checkpoint import resolve_model
from ml_lib.diffusion.testing.tiny import TinyModelFiles


def _image(pipe: object) -> np.ndarray:
    out = pipe(  # type: ignore[operator]
        "a fox",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
    )
    return np.asarray(out.images[0])


@pytest.mark.parametrize(
    ("strategy", "tiling", "fp8"),
    [("balanced", False, True), ("sequential", True, True), ("aggressive", True, True)],
)
def test_cpu_strategies_apply_and_still_draw(
    tiny_sd1: TinyModelFiles, strategy: str, tiling: bool, fp8: bool
) -> None:
    pool = PipelinePool(capacity=2)
    model = resolve_model(str(tiny_sd1.diffusers_dir))
    plain = pool.get(model, dtype="float32", device="cpu").pipe
    prepared = pool.get(model, dtype="float32", device="cpu", memory=strategy).pipe
    assert prepared is not plain and pool.loads == 2  # never the pipeline prepared for another strategy
    assert (
        pool.get(model, dtype="float32", device="cpu", memory=strategy).pipe is prepared and pool.loads == 2
    )
    assert prepared.vae.use_slicing and prepared.vae.use_tiling is tiling and not plain.vae.use_slicing
    dtypes = {p.dtype for p in prepared.unet.parameters()}
    assert (torch.float8_e4m3fn in dtypes) is fp8
    a, b = _image(plain), _image(prepared)
    assert a.shape == b.shape and np.isfinite(b).all()
    assert 0 < np.abs(a - b).mean() < 0.1  # fp8 storage changes pixels a little, not the picture


def test_unknown_strategy_is_a_plan_error(tiny_sd1: TinyModelFiles) -> None:
    with pytest.raises(PlanError, match="not one of"):
        apply_strategy(object(), "turbo", "cpu")


def test_tiles_are_at_most_512_pixels_where_diffusers_would_use_the_native_size() -> None:
    from diffusers import AutoencoderKL

    from ml_lib.diffusion.engine.memory import TILE_PX, tile_vae

    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4,
        sample_size=1024,
    )
    assert vae.tile_sample_min_size == 1024  # diffusers' default: an SDXL 1024² image would not be tiled
    tile_vae(vae)
    assert vae.use_tiling and (vae.tile_sample_min_size, vae.tile_latent_min_size) == (TILE_PX, TILE_PX // 8)
    z = torch.randn(1, 4, 80, 80)  # a 640² image: decoded in overlapping 512² tiles, the seams blended
    with torch.no_grad():
        out = vae.decode(z).sample
    assert out.shape == (1, 3, 640, 640) and torch.isfinite(out).all()
