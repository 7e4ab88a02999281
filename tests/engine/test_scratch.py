"""The reused buffer for compute copies of stored weights (engine/scratch.py, engine/storage.py)."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
import torch

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.scratch import Scratch
from ml_lib.diffusion.engine.storage import StoredWeightsHook, apply_storage, release_scratch
from ml_lib.diffusion.testing.export import save_single_file, write_config_folder
from ml_lib.diffusion.testing.tiny import tiny_sd1_components


def _stored_pipe() -> object:
    pipe = tiny_sd1_components(0)
    pipe.to(torch.float16)
    apply_storage(pipe, "float16", "float32")
    return pipe


def _inputs(unet: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    dim = unet.config.cross_attention_dim  # type: ignore[union-attr]
    return torch.randn(2, 4, 8, 8, generator=g), torch.tensor(10), torch.randn(2, 77, dim, generator=g)


def _scratch(unet: torch.nn.Module) -> Scratch:
    hooks = {
        id(h.scratch): h.scratch
        for m in unet.modules()
        if (r := getattr(m, "_diffusers_hook", None)) is not None
        and isinstance(h := r.get_hook("layerwise_casting"), StoredWeightsHook)
    }
    assert len(hooks) == 1  # one buffer for the whole model
    return next(iter(hooks.values()))


def _largest_layer(unet: torch.nn.Module) -> int:
    return max(
        sum(-(-p.numel() // 16) * 16 for p in m.parameters(recurse=False) if p.dtype == torch.float16)
        for m in unet.modules()
    )


def test_layers_compute_on_one_reused_buffer_and_the_result_is_bit_identical() -> None:
    pipe = _stored_pipe()
    unet = pipe.unet  # type: ignore[attr-defined]
    fresh = copy.deepcopy(unet)
    scratch = _scratch(unet)
    assert scratch.held_bytes() == 0
    with torch.no_grad():
        got = unet(*_inputs(unet)).sample
        held = scratch.held_bytes()
        ptr = scratch._local.buf.data_ptr()
        again = unet(*_inputs(unet)).sample
        assert scratch._local.buf.data_ptr() == ptr  # the same pages, not a new allocation per forward
    assert held == _largest_layer(unet) * 4  # grown to the largest layer's fp32 copy, no further
    with torch.enable_grad():  # autograd on: fresh copies, as before the buffer (a backward reads them)
        fresh_scratch = _scratch(fresh)
        want = fresh(*_inputs(fresh)).sample
        assert fresh_scratch.held_bytes() == 0
    assert torch.equal(got, want.detach()) and torch.equal(got, again)
    assert unet.conv_in.weight.dtype == torch.float16  # the stored tensors are back after each forward
    assert release_scratch(unet, None, "not a module") == held
    assert scratch.held_bytes() == 0
    assert _scratch(pipe.vae) is scratch  # type: ignore[attr-defined]  # the components share the buffer


def test_a_forward_that_raises_puts_the_stored_weights_back() -> None:
    pipe = _stored_pipe()
    unet = pipe.unet  # type: ignore[attr-defined]
    conv = unet.conv_in
    ptr = conv.weight.data_ptr()
    sample, t, text = _inputs(unet)
    with torch.no_grad(), pytest.raises(RuntimeError, match="channels"):  # raised inside conv_in's forward
        unet(torch.cat([sample, sample[:, :1]], dim=1), t, text)
    assert conv.weight.data_ptr() == ptr and conv.weight.dtype == torch.float16
    scratch = _scratch(unet)
    with torch.no_grad():
        assert scratch.lend([conv.weight.data], torch.float32) is not None  # lendable again, not stuck lent
    scratch.give_back()


def test_the_buffer_is_lent_once_at_a_time_and_per_thread() -> None:
    scratch = Scratch()
    w = torch.randn(3, 5).half()
    with torch.no_grad():
        first = scratch.lend([w, w[0]], torch.float32)
        assert first is not None and torch.equal(first[0], w.float()) and torch.equal(first[1], w[0].float())
        assert first[1].data_ptr() - first[0].data_ptr() == 16 * 4  # 64-byte aligned views
        assert scratch.lend([w], torch.float32) is None  # a layer inside a layer gets fresh copies
        other: list[object] = []

        def lend_elsewhere() -> None:
            with torch.no_grad():  # grad mode is per thread
                other.append(scratch.lend([w], torch.float32))

        t = threading.Thread(target=lend_elsewhere)
        t.start()
        t.join()
        assert other[0] is not None and other[0][0].data_ptr() != first[0].data_ptr()  # type: ignore[index]
        scratch.give_back()
        assert scratch.lend([w], torch.float32) is not None
    scratch.release()
    assert scratch.held_bytes() == 0


def test_no_buffer_is_held_after_a_generation(tmp_path: Path) -> None:
    pipe = tiny_sd1_components(0)
    path = save_single_file(pipe, tmp_path / "tiny16.safetensors", dtype=torch.float16)
    write_config_folder(pipe, tmp_path / "tiny16.config")
    settings = Settings(home=tmp_path / "home", model_roots=(), threads=1)
    with ImageGenerator(settings, device="cpu") as gen:
        plan = gen.plan("a red ball", model=str(path), width=64, height=64, steps=2, seed=1)
        assert plan.storage_dtype == "float16"
        gen.execute(plan, save=False)
        loaded = gen._pipelines().get(
            plan.model, dtype="float32", device="cpu", memory="none", storage="float16"
        )
        for name in ("unet", "vae", "text_encoder"):
            assert _scratch(getattr(loaded.pipe, name)).held_bytes() == 0, name


@pytest.mark.parametrize("first", ["inference_mode", "no_grad"])
def test_the_buffer_serves_inference_mode_and_no_grad_alike(first: str) -> None:
    scratch = Scratch()
    w = torch.randn(4, 4).half()
    modes = {"inference_mode": torch.inference_mode, "no_grad": torch.no_grad}
    for name in (first, *(m for m in modes if m != first)):  # made under one, written under the other
        with modes[name]():
            lent = scratch.lend([w], torch.float32)
            assert lent is not None and torch.equal(lent[0], w.float())
            scratch.give_back()
