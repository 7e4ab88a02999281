"""fp16 weight storage with fp32 compute (engine/storage.py): what the CPU policy applies."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.storage import apply_storage, stored_dtypes
from ml_lib.diffusion.testing.export import save_single_file, write_config_folder
from ml_lib.diffusion.testing.tiny import tiny_sd1_components

FAST = dict(width=64, height=64, steps=3, cfg_scale=5.0, sampler="Euler", seed=4)


def _unet_inputs(pipe: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    unet = pipe.unet  # type: ignore[attr-defined]
    dim = unet.config.cross_attention_dim
    return torch.randn(2, 4, 8, 8, generator=g), torch.tensor(10), torch.randn(2, 77, dim, generator=g)


def test_weights_stay_fp16_and_layers_compute_in_fp32() -> None:
    fp32 = tiny_sd1_components(0)
    rounded = copy.deepcopy(fp32)  # the fp32 pipeline of an fp16 file: fp16 values, fp32 tensors
    rounded.to(torch.float16)
    rounded.to(torch.float32)
    stored = copy.deepcopy(fp32)
    stored.to(torch.float16)  # as the loader gives it for an fp16 file
    done = apply_storage(stored, "float16", "float32")
    assert done == ("unet fp16 storage", "vae fp16 storage", "text_encoder fp16 storage")
    counts = stored_dtypes(stored.unet)
    assert counts[torch.float16] > 0.9 * sum(counts.values())  # only norms were upcast
    assert stored.unet.dtype == torch.float32 and stored.text_encoder.dtype == torch.float32
    conv = stored.unet.conv_in.weight
    before = conv.data_ptr()
    with torch.no_grad():
        got = stored.unet(*_unet_inputs(stored)).sample
        want = rounded.unet(*_unet_inputs(rounded)).sample
        full = fp32.unet(*_unet_inputs(fp32)).sample
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert torch.allclose(got, want, atol=1e-6, rtol=0)  # exactly what fp32 computes from the fp16 values
    assert torch.allclose(got, full, atol=5e-2)  # and close to the unrounded fp32 weights
    # the stored tensors were not rewritten by the forward
    assert conv.dtype == torch.float16 and conv.data_ptr() == before
    # the text encoder's token table stays fp16 (a lookup is exact), and the encoder computes what fp32 does
    assert stored.text_encoder.get_input_embeddings().weight.dtype == torch.float16
    ids = stored.tokenizer("a red ball", padding="max_length", return_tensors="pt").input_ids
    with torch.no_grad():
        got_text, want_text = stored.text_encoder(ids)[0], rounded.text_encoder(ids)[0]
    assert got_text.dtype == torch.float32 and torch.allclose(got_text, want_text, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def fp16_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SD1 model as an fp16 single file (as real checkpoints ship) with its config folder."""
    root = tmp_path_factory.mktemp("fp16-file")
    pipe = tiny_sd1_components(0)
    path = save_single_file(pipe, root / "tiny16.safetensors", dtype=torch.float16)
    write_config_folder(pipe, root / "tiny16.config")
    return path


def test_the_planner_stores_an_fp16_file_in_fp16_and_the_image_is_the_fp32_one(
    fp16_file: Path, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, model_roots=(), threads=1)
    with ImageGenerator(settings, device="cpu", pool_size=2) as gen:
        plan = gen.plan("a red ball", model=str(fp16_file), **FAST)
        assert plan.storage_dtype == "float16"
        assert [d.value for d in plan.decisions if d.field == "storage"] == ["float16"]
        stored = gen.execute(plan, save=False)
        full = gen.execute(dataclasses.replace(plan, storage_dtype=None), save=False)
        memory = plan.memory.strategy if plan.memory is not None else "none"
        pool = gen._pipelines()
        pipes = {
            s: pool.get(plan.model, dtype="float32", device="cpu", memory=memory, storage=s).pipe
            for s in ("float16", None)
        }
        assert pool.loads == 2
    a = np.asarray(stored.images[0], dtype=np.int16)
    b = np.asarray(full.images[0], dtype=np.int16)
    assert np.isfinite(a).all() and a.std() > 0
    assert np.abs(a - b).max() <= 1
    assert pipes["float16"].unet.conv_in.weight.dtype == torch.float16
    assert pipes[None].unet.conv_in.weight.dtype == torch.float32
