"""Recovery: failures injected at load, denoise, decode and as VAE NaNs are retried, bounded, recorded in the
result and the image, and what a failed attempt held is freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel

from ml_lib.diffusion.engine import executor
from ml_lib.diffusion.errors import GenerationCancelled, OutOfMemory
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.result import CancelToken, Retry
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.tiny import TinyModelFiles

CPU_OOM = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9663676416 bytes."
ALL = ("none", "balanced", "sequential", "aggressive")


@pytest.fixture
def gen(tmp_path: Path) -> Iterator[ImageGenerator]:
    with ImageGenerator(Settings(home=tmp_path, model_roots=()), device="cpu", pool_size=2) as g:
        yield g


def _request(tiny: TinyModelFiles, tmp_path: Path | None = None) -> GenerationRequest:
    out = str(tmp_path) if tmp_path is not None else None
    return GenerationRequest(
        "a fox", model=str(tiny.diffusers_dir), width=64, height=64, steps=2, memory="none", output_dir=out
    )


def _stored_fp8(unet: Any) -> bool:
    return bool(next(unet.parameters()).dtype == torch.float8_e4m3fn)


def _loads(monkeypatch: pytest.MonkeyPatch, fail: Any) -> list[weakref.ref[Any]]:
    """Wrap the loader: every pipeline it builds is tracked by a weak reference, and ``fail(n, pipe)`` may
    raise after the n-th one was built (as a move to the device or an offload hook would)."""
    real = StableDiffusionPipeline.from_pretrained
    built: list[weakref.ref[Any]] = []

    def load(*args: Any, **kwargs: Any) -> Any:
        pipe = real(*args, **kwargs)
        built.append(weakref.ref(pipe))
        fail(len(built), pipe)
        return pipe

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", load)
    return built


def test_a_decode_oom_retries_tiled_on_the_same_latents_and_is_written_into_the_image(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = executor._decode
    seen: list[bool] = []
    pipes: list[Any] = []

    def decode(pipe: Any, latents: Any, plan: Any) -> Any:
        seen.append(pipe.vae.use_tiling)
        pipes.append(pipe)
        if not pipe.vae.use_tiling:
            raise RuntimeError(CPU_OOM)
        return real(pipe, latents, plan)

    monkeypatch.setattr(executor, "_decode", decode)
    result = gen.generate(_request(tiny_sd1, tmp_path))
    assert len(result.images) == 1 and seen == [False, True]  # no reload, no second denoise
    assert gen._pipelines().loads == 1 and pipes[0] is pipes[1]
    assert not pipes[0].vae.use_tiling  # the pooled pipeline is left as its strategy prepared it
    assert result.retries == (Retry("decode", "out of memory", "tiled VAE decode", CPU_OOM),)
    assert result.memory_retries == ("decode: out of memory → tiled VAE decode",)
    meta = gen.info(result.paths[0])
    assert meta.parsed is not None and meta.parsed.seed == result.seeds[0] and meta.parsed.steps == 2
    assert meta.parsed.get("Memory retries") == "decode: out of memory → tiled VAE decode"
    assert meta.parsed.get("Version") is not None  # the pairs after it still parse


def test_no_retry_writes_no_retry_key(gen: ImageGenerator, tiny_sd1: TinyModelFiles, tmp_path: Path) -> None:
    result = gen.generate(_request(tiny_sd1, tmp_path))
    assert result.retries == ()
    meta = gen.info(result.paths[0])
    assert meta.parsed is not None and "Memory retries" not in meta.parsed.keys


def test_an_oom_at_load_frees_the_attempt_and_steps_up(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(n: int, _pipe: Any) -> None:
        if n == 1:
            raise RuntimeError(f"[enforce fail at alloc_cpu.cpp:117] data. {CPU_OOM}")

    built = _loads(monkeypatch, fail)
    result = gen.generate(_request(tiny_sd1), save=False)
    assert len(built) == 2 and len(result.images) == 1
    (retry,) = result.retries
    assert (retry.phase, retry.error, retry.action) == ("load", "out of memory", "retry with balanced")
    assert CPU_OOM in retry.detail
    gc.collect()
    assert built[0]() is None  # the half-prepared pipeline of the failed attempt is gone
    unet = built[1]().unet  # type: ignore[union-attr]
    assert _stored_fp8(unet)  # balanced on a CPU: the UNet stored in fp8


def test_a_denoise_oom_drops_the_pipeline_and_steps_up(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = UNet2DConditionModel.forward

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _stored_fp8(self):  # strategy none: too big
            raise MemoryError
        return real(self, *args, **kwargs)

    built = _loads(monkeypatch, lambda n, pipe: None)
    monkeypatch.setattr(UNet2DConditionModel, "forward", forward)
    result = gen.generate(_request(tiny_sd1), save=False)
    assert [r.describe() for r in result.retries] == ["denoise: out of memory → retry with balanced"]
    assert result.retries[0].detail == "MemoryError"  # what failed underneath, not our own message
    gc.collect()
    assert len(built) == 2 and built[0]() is None and built[1]() is not None  # the pool holds the new one


def test_nans_from_an_fp16_vae_are_decoded_again_in_fp32(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_decode, real_prepare = executor._decode, executor.apply_embeddings
    dtypes: list[torch.dtype] = []

    def prepare(pipe: Any, *args: Any) -> Any:  # before the run: an fp16 VAE that overflows in fp16
        vae = pipe.vae  # (as SDXL's original VAE does), kept in fp16 by its config
        if vae.dtype != torch.float16:
            vae.to(torch.float16)
            vae.register_to_config(force_upcast=False)
            with torch.no_grad():
                vae.decoder.conv_in.weight.mul_(1e5)
        return real_prepare(pipe, *args)

    def decode(pipe: Any, latents: Any, plan: Any) -> Any:
        dtypes.append(pipe.vae.dtype)
        return real_decode(pipe, latents, plan)

    monkeypatch.setattr(executor, "apply_embeddings", prepare)
    monkeypatch.setattr(executor, "_decode", decode)
    result = gen.generate(_request(tiny_sd1), save=False)
    assert dtypes == [torch.float16, torch.float32]
    (retry,) = result.retries
    assert (retry.phase, retry.error, retry.action) == (
        "decode",
        "NaN in the fp16 VAE decode",
        "VAE decode in fp32",
    )
    assert "NaN or infinite" in retry.detail
    assert len(result.images) == 1 and result.images[0].getextrema() != ((0, 0), (0, 0), (0, 0))
    vae = gen._pipelines().get(result.plan.model, dtype="float32", device="cpu", memory="none").pipe.vae
    assert vae.dtype == torch.float16  # put back as it was


def test_nans_from_an_fp32_vae_are_not_retried(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml_lib.diffusion.errors import NonFiniteError

    calls: list[int] = []

    def decode(pipe: Any, latents: Any, plan: Any) -> Any:
        calls.append(1)
        executor.check_finite(torch.full((1,), float("nan")), "decoded image", plan)

    monkeypatch.setattr(executor, "_decode", decode)
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        gen.generate(_request(tiny_sd1), save=False)
    assert calls == [1]


def test_still_failing_at_the_last_strategy_is_typed_and_frees_everything(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_n: int, _pipe: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    built = _loads(monkeypatch, fail)
    with pytest.raises(OutOfMemory) as info:
        gen.generate(_request(tiny_sd1), save=False)
    error = info.value
    assert error.phase == "load" and error.tried == ALL and len(built) == 4
    assert error.estimated_peak_bytes is not None and error.estimated_peak_bytes > 0
    message = str(error)
    assert "Estimated ~" in message and "tried none, balanced, sequential, aggressive" in message
    assert "\n" not in message
    gc.collect()
    assert [ref() for ref in built] == [None] * 4 and len(gen._pipelines()) == 0  # while the error is held


@pytest.mark.slow  # four loads and denoises; the load ladder above covers giving up
def test_decode_failing_everywhere_tries_tiles_then_every_strategy(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiling: list[bool] = []

    def decode(pipe: Any, latents: Any, plan: Any) -> Any:
        tiling.append(pipe.vae.use_tiling)
        raise MemoryError

    monkeypatch.setattr(executor, "_decode", decode)
    with pytest.raises(OutOfMemory, match="tried none, balanced, sequential, aggressive") as info:
        gen.generate(_request(tiny_sd1), save=False)
    assert info.value.phase == "decode" and "Estimated ~" in str(info.value)
    # none and balanced: plain, then tiled; sequential and aggressive tile on a CPU already
    assert tiling == [False, True, False, True, True, True]


def _live_tensors() -> int:
    gc.collect()
    return sum(
        1 for o in gc.get_objects() if isinstance(o, torch.Tensor) and not isinstance(o, torch.nn.Parameter)
    )


def test_cancelling_frees_what_the_run_held(gen: ImageGenerator, tiny_sd1: TinyModelFiles) -> None:
    request = _request(tiny_sd1)
    gen.generate(request, save=False)  # warm: the pipeline is pooled, caches filled
    baseline = _live_tensors()
    token = CancelToken()
    with pytest.raises(GenerationCancelled) as info:
        gen.generate(request, save=False, cancel=token, on_step=lambda _s: token.cancel())
    assert info.value is not None  # the error is still held, with its traceback
    assert _live_tensors() <= baseline  # embeddings, latents, noise: gone
