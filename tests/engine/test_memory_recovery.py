"""Out-of-memory recovery: injected failures step up one strategy and retry, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_lib.diffusion.engine import executor
from ml_lib.diffusion.errors import OutOfMemory
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.tiny import TinyModelFiles


@pytest.fixture
def gen(tmp_path: Path) -> Iterator[ImageGenerator]:
    with ImageGenerator(Settings(home=tmp_path, model_roots=()), device="cpu", pool_size=2) as g:
        yield g


def _request(tiny: TinyModelFiles) -> GenerationRequest:
    return GenerationRequest(
        "a fox", model=str(tiny.diffusers_dir), width=64, height=64, steps=2, memory="none"
    )


def test_a_decode_oom_retries_with_a_tiled_decode(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = executor._decode
    seen: list[bool] = []

    def decode(pipe: Any, latents: Any, plan: Any) -> Any:
        seen.append(pipe.vae.use_tiling)
        if not pipe.vae.use_tiling:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
        return real(pipe, latents, plan)

    monkeypatch.setattr(executor, "_decode", decode)
    result = gen.generate(_request(tiny_sd1), save=False)
    assert len(result.images) == 1 and seen == [False, False, True]  # none, balanced, then sequential tiles
    assert result.memory_retries == ("none → out of memory", "balanced → out of memory")


def test_still_failing_at_the_last_rung_is_a_typed_error(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def decode(pipe: Any, latents: Any, plan: Any) -> Any:
        calls.append("decode")
        raise MemoryError

    monkeypatch.setattr(executor, "_decode", decode)
    with pytest.raises(OutOfMemory, match="tried none, balanced, sequential, aggressive") as info:
        gen.generate(_request(tiny_sd1), save=False)
    assert info.value.phase == "decode" and "Estimated ~" in str(info.value) and len(calls) == 4
