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
