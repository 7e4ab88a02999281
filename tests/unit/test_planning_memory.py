"""The memory estimate against measured figures, and the strategy choice on fake devices."""

from __future__ import annotations

import logging

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.plan import GenerationPlan, ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.memory import MARGIN, WORK_BYTES, Strategy, Workload, choose_strategy, estimate
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings

GB = 10**9
VAE = 83_653_863
SD15 = {
    "family": Family.SD1,
    "unet_params": 859_520_964,
    "text_encoder_params": 123_060_480,
    "vae_params": 83_653_863,
}
SDXL = {
    "family": Family.SDXL,
    "unet_params": 2_567_463_684,
    "text_encoder_params": 817_720_320,
    "vae_params": 83_653_863,
}
FP16_FILE = 2 * (859_520_964 + 123_060_480 + 83_653_863)


def _gpu(gb: int) -> DeviceInfo:
    return DeviceInfo("cuda", f"{gb} GB GPU", gb * GB, gb * GB, ram_total=32 * GB, ram_available=24 * GB)


def _cpu(gb: int) -> DeviceInfo:
    return DeviceInfo("cpu", f"{gb} GB CPU", cores=4, ram_total=gb * GB, ram_available=int(gb * 0.75 * GB))


def test_sd15_cpu_single_file_matches_the_measured_peak() -> None:
    # FACTS: raw diffusers from_single_file (fp16 file), fp32, 256², 4 Euler steps, CFG 7: 6.7 GB peak RSS
    w = Workload(**SD15, width=256, height=256, file_bytes=FP16_FILE)  # type: ignore[arg-type]
    peak = estimate(w).peak_bytes
    assert abs(peak - 6.7 * GB) / (6.7 * GB) < 0.05


@pytest.mark.parametrize(
    ("size", "forward", "decode"), [(256, 203_554_816, 342_540_288), (512, 477_437_952, 1_049_882_624)]
)
def test_sd15_activations_and_decode_match_the_measured_peaks(size: int, forward: int, decode: int) -> None:
    # measured here (benchmarks/memory.py): SD1.5 fp32 UNet forward with CFG and VAE decode, peak RSS above
    # the loaded weights
    e = estimate(Workload(**SD15, width=size, height=size))  # type: ignore[arg-type]
    assert abs(e.activation_bytes - forward) / forward < 0.05
    assert abs(e.decode_bytes - decode) / decode < 0.05


def test_cfg_batch_size_and_controlnets_grow_the_activations() -> None:
    base = Workload(**SD15, width=512, height=512, dtype="float16", device="cuda")  # type: ignore[arg-type]
    one = estimate(base).activation_bytes - WORK_BYTES
    no_cfg = Workload(**SD15, width=512, height=512, cfg=False, dtype="float16", device="cuda")  # type: ignore[arg-type]
    two = Workload(**SD15, width=512, height=512, batch=2, dtype="float16", device="cuda")  # type: ignore[arg-type]
    ctrl = Workload(**SD15, width=512, height=512, controlnets=1, dtype="float16", device="cuda")  # type: ignore[arg-type]
    assert estimate(no_cfg).activation_bytes - WORK_BYTES == pytest.approx(one / 2, rel=0.01)
    assert estimate(two).activation_bytes - WORK_BYTES == pytest.approx(2 * one, rel=0.01)
    assert estimate(ctrl).activation_bytes - WORK_BYTES == pytest.approx(1.5 * one, rel=0.01)
    assert estimate(ctrl).weight_bytes > estimate(base).weight_bytes


def test_tiled_decode_is_bounded_by_one_tile() -> None:
    big = Workload(**SD15, width=2048, height=2048, dtype="float16", device="cuda")  # type: ignore[arg-type]
    plain = estimate(big, Strategy.SEQUENTIAL).decode_bytes
    tiled = estimate(big, Strategy.AGGRESSIVE).decode_bytes
    assert tiled < plain / 8  # one 512² tile of sixteen at a time


@pytest.mark.parametrize("size", [512, 1024])
def test_strategies_need_less_and_less_on_a_gpu(size: int) -> None:
    w = Workload(**SDXL, width=size, height=size, dtype="float16", device="cuda")  # type: ignore[arg-type]
    peaks = [estimate(w, s).peak_bytes for s in Strategy]
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == 4


@pytest.mark.parametrize(
    ("gb", "expected"),
    [
        (4, Strategy.SEQUENTIAL),
        (6, Strategy.SEQUENTIAL),
        (8, Strategy.SEQUENTIAL),
        (12, Strategy.NONE),
        (24, Strategy.NONE),
    ],
)
def test_sdxl_1024_on_gpus(gb: int, expected: Strategy) -> None:
    device = _gpu(gb)
    w = Workload(**SDXL, width=1024, height=1024, dtype="float16", device="cuda")  # type: ignore[arg-type]
    choice = choose_strategy(w, device.memory_budget)
    assert choice.strategy is expected and choice.fits
    assert choice.estimate.peak_bytes <= device.memory_budget * (1 - MARGIN)  # type: ignore[operator]
    assert f"{gb}.0 GB free VRAM" in choice.reason and f"→ {expected.value}" in choice.reason


def test_sdxl_512_on_an_8_gb_gpu_takes_model_offload() -> None:
    w = Workload(**SDXL, width=512, height=512, dtype="float16", device="cuda")  # type: ignore[arg-type]
    assert choose_strategy(w, _gpu(8).memory_budget).strategy is Strategy.BALANCED


def test_least_aggressive_that_fits() -> None:
    w = Workload(**SDXL, width=1024, height=1024, dtype="float16", device="cuda")  # type: ignore[arg-type]
    choice = choose_strategy(w, _gpu(6).memory_budget)
    weaker = list(Strategy)[list(Strategy).index(choice.strategy) - 1]
    assert estimate(w, weaker).peak_bytes > 6 * GB * (1 - MARGIN)


@pytest.mark.parametrize(("gb", "fits"), [(8, False), (16, True)])
def test_sd15_single_file_on_cpus(gb: int, fits: bool) -> None:
    w = Workload(**SD15, width=512, height=512, file_bytes=FP16_FILE)  # type: ignore[arg-type]
    choice = choose_strategy(w, _cpu(gb).memory_budget)
    assert choice.fits is fits
    assert choice.strategy is (Strategy.NONE if fits else Strategy.AGGRESSIVE)
    assert ("may not fit" in choice.reason) is not fits and "RAM available" in choice.reason


def test_an_override_is_kept_and_flagged_when_it_cannot_fit() -> None:
    w = Workload(**SDXL, width=1024, height=1024, dtype="float16", device="cuda")  # type: ignore[arg-type]
    choice = choose_strategy(w, _gpu(6).memory_budget, Strategy.NONE)
    assert choice.strategy is Strategy.NONE and not choice.fits and "may not fit" in choice.reason
    assert choose_strategy(w, _gpu(24).memory_budget, Strategy.AGGRESSIVE).fits


def test_unknown_memory_plans_none() -> None:
    w = Workload(**SD15, width=512, height=512)  # type: ignore[arg-type]
    choice = choose_strategy(w, DeviceInfo("cpu").memory_budget)
    assert choice.strategy is Strategy.NONE and choice.budget_bytes is None and "unknown" in choice.reason


def test_device_budgets() -> None:
    assert _gpu(6).vram_free == 6 * GB and _gpu(6).memory_budget == 6 * GB
    assert _cpu(16).vram_total is None and _cpu(16).memory_budget == 12 * GB


def _plan(tmp_path, request: GenerationRequest, device: DeviceInfo):  # type: ignore[no-untyped-def]
    model = ModelRef("/m/xl.safetensors", ModelFormat.SINGLE_FILE, "sdxl", "epsilon", "xl")
    resolved = ResolvedRequest(
        model,
        unet_params=SDXL["unet_params"],
        text_encoder_params=SDXL["text_encoder_params"],
        vae_params=VAE,
    )  # type: ignore[arg-type]
    return Planner(Settings(home=tmp_path), seed_source=lambda: 1).plan(request, resolved, None, device)


def test_the_plan_carries_the_strategy_and_why(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    plan = _plan(tmp_path, GenerationRequest("a fox", width=1024, height=1024), _gpu(6))
    assert plan.memory is not None and plan.memory.strategy == "sequential"
    assert plan.memory.budget_bytes == 6 * GB and 0 < plan.memory.estimated_peak_bytes < 6 * GB
    decision = plan.decision("memory")
    assert decision is not None and decision.source is Source.DEVICE
    assert "sdxl 1024x1024 needs ~" in decision.reason and "6.0 GB free VRAM" in decision.reason
    assert GenerationPlan.from_json(plan.to_json()) == plan
    with caplog.at_level(logging.WARNING):
        forced = _plan(tmp_path, GenerationRequest("a fox", width=1024, height=1024, memory="none"), _gpu(6))
    assert forced.memory is not None and forced.memory.strategy == "none"
    assert forced.decision("memory").source is Source.USER  # type: ignore[union-attr]
    assert "may not fit" in caplog.text
    with pytest.raises(RequestError, match="not a memory strategy"):
        _plan(tmp_path, GenerationRequest("a fox", memory="turbo"), _gpu(6))


def test_a_plan_without_memory_leaves_it_out_of_the_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ModelRef("hub/x", ModelFormat.HUB, "sd1", "epsilon", "x")
    plan = Planner(Settings(home=tmp_path), seed_source=lambda: 1).plan(
        GenerationRequest("a fox"), ResolvedRequest(model), None, _cpu(16)
    )
    assert plan.memory is None and "memory" not in plan.to_dict()
