"""Peak memory per phase: measured for every generation, a short spike is attributed to its own phase."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from ml_lib.diffusion.engine import executor
from ml_lib.diffusion.engine.peaks import PhaseMonitor
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.tiny import TinyModelFiles

MB = 10**6
SPIKE = 300 * MB


@pytest.fixture
def gen(tmp_path: Path) -> Iterator[ImageGenerator]:
    with ImageGenerator(Settings(home=tmp_path, model_roots=()), device="cpu") as g:
        yield g


def test_each_phase_has_its_peak_and_a_spike_lands_in_its_phase(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = executor._encode

    def encode(*args: Any) -> Any:  # 300 MB held for 50 ms while encoding, then freed
        spike = torch.ones(SPIKE // 4)
        time.sleep(0.05)
        del spike
        return real(*args)

    monkeypatch.setattr(executor, "_encode", encode)
    request = GenerationRequest("a fox", model=str(tiny_sd1.diffusers_dir), width=64, height=64, steps=2)
    result = gen.generate(request, save=False)
    m = result.memory
    assert m is not None and m.rss_before > 0 and m.rss_after > 0
    phases = (m.load, m.encode, m.denoise, m.decode)
    assert all(p.rss_peak >= m.rss_before * 0.9 for p in phases)
    assert all(p.cuda_allocated_peak is None and p.cuda_reserved_peak is None for p in phases)  # a CPU
    assert m.encode.rss_peak - m.denoise.rss_peak > 0.8 * SPIKE  # freed before denoising
    assert m.encode.rss_peak - m.rss_after > 0.8 * SPIKE
    as_json = result.to_dict()
    assert as_json["memory"]["encode"]["rss_peak"] == m.encode.rss_peak and as_json["retries"] == []
    assert "cuda_allocated_peak" not in as_json["memory"]["denoise"]


def test_the_monitor_attributes_memory_to_the_phase_it_was_used_in() -> None:
    with PhaseMonitor("cpu", interval=0.005) as monitor:
        with monitor.phase("load"):
            held = torch.ones(SPIKE // 4)
            time.sleep(0.05)
        del held
        with monitor.phase("decode"):
            time.sleep(0.02)
    report = monitor.report()
    assert report.load.rss_peak - report.decode.rss_peak > 0.8 * SPIKE
    assert report.encode.rss_peak == 0  # never entered
