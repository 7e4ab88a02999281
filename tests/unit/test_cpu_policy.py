"""The CPU weight-storage policy on fake devices, and what it changes in the memory estimate."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.plan import Decision, ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.cpu_policy import choose_storage, plan_storage
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.memory import Strategy, Workload, estimate

GB = 10**9
SD15 = {"unet_params": 859_520_964, "text_encoder_params": 123_060_480, "vae_params": 83_653_863}
FP16_FILE = 2 * sum(SD15.values())


def _cpu(available_gb: float) -> DeviceInfo:
    return DeviceInfo("cpu", "fake CPU", cores=2, ram_total=16 * GB, ram_available=int(available_gb * GB))


def _resolved(weight_dtype: str | None, fmt: ModelFormat = ModelFormat.SINGLE_FILE) -> ResolvedRequest:
    model = ModelRef("/m/sd15.safetensors", fmt, "sd1", "epsilon", "sd15")
    return ResolvedRequest(
        model,
        unet_params=SD15["unet_params"],
        text_encoder_params=SD15["text_encoder_params"],
        vae_params=SD15["vae_params"],
        weight_file_bytes=FP16_FILE if weight_dtype != "float32" else 2 * FP16_FILE,
        weight_dtype=weight_dtype,
    )


@pytest.mark.parametrize(("file_dtype", "storage"), [("float16", "float16"), ("bfloat16", "bfloat16")])
def test_a_narrow_file_is_kept_as_read_whatever_the_ram(file_dtype: str, storage: str) -> None:
    for ram in (2, 8, 64):
        choice = choose_storage(_cpu(ram), "float32", file_dtype, need_bytes=GB, room_bytes=ram * GB)
        assert choice is not None and choice.storage == storage
        assert "fp32" in choice.reason


def test_an_fp32_file_is_narrowed_only_when_ram_is_short() -> None:
    assert choose_storage(_cpu(16), "float32", "float32", need_bytes=5 * GB, room_bytes=14 * GB) is None
    short = choose_storage(_cpu(4), "float32", "float32", need_bytes=5 * GB, room_bytes=3 * GB)
    assert short is not None and short.storage == "float16"
    assert "5.0 GB" in short.reason and "3.0 GB" in short.reason and "changes pixels" in short.reason
    # unknown need or room: nothing to decide on
    assert choose_storage(_cpu(4), "float32", "float32") is None


@pytest.mark.parametrize(
    ("device", "compute"),
    [
        (DeviceInfo("cuda", "fake GPU", 6 * GB, 6 * GB, ram_available=8 * GB), "float16"),
        (DeviceInfo("cuda", "fake GPU", 6 * GB, 6 * GB, ram_available=8 * GB), "float32"),
        (DeviceInfo("mps", "Apple", ram_available=8 * GB), "float16"),
        (DeviceInfo("cpu", "fake CPU", ram_available=8 * GB), "float16"),
    ],
)
def test_no_decision_off_a_cpu_or_without_fp32_compute(device: DeviceInfo, compute: str) -> None:
    assert choose_storage(device, compute, "float16") is None


def test_unknown_file_dtype_decides_nothing() -> None:
    assert choose_storage(_cpu(1), "float32", None, need_bytes=5 * GB, room_bytes=GB) is None


def test_plan_storage_records_the_decision_and_uses_the_estimate_for_fp32_files() -> None:
    decisions: list[Decision] = []
    shape = (512, 512, 1, 7.0)
    assert plan_storage(_resolved("float16"), _cpu(16), "float32", shape, decisions) == "float16"
    assert [(d.field, d.value, d.source) for d in decisions] == [("storage", "float16", Source.DEVICE)]
    decisions.clear()
    # an fp32 SD 1.5 file needs ~9 GB at load on a CPU: 16 GB available fits, 4 GB does not
    assert plan_storage(_resolved("float32"), _cpu(16), "float32", shape, decisions) is None
    assert decisions == []
    assert plan_storage(_resolved("float32"), _cpu(4), "float32", shape, decisions) == "float16"
    assert decisions[0].field == "storage" and "GB free" in decisions[0].reason
    # a GPU plan never gets a storage decision
    gpu = DeviceInfo("cuda", "fake GPU", 6 * GB, 6 * GB, ram_available=8 * GB)
    assert plan_storage(_resolved("float16"), gpu, "float16", shape, []) is None


def test_fp16_storage_halves_the_weights_and_drops_the_conversion_copy_from_the_estimate() -> None:
    fp32 = Workload(Family.SD1, **SD15, width=256, height=256, file_bytes=FP16_FILE)
    fp16 = Workload(Family.SD1, **SD15, width=256, height=256, file_bytes=FP16_FILE, storage_dtype="float16")
    a, b = estimate(fp32), estimate(fp16)
    assert b.weight_bytes * 2 == pytest.approx(a.weight_bytes, rel=1e-6)
    assert b.load_bytes < a.load_bytes - a.weight_bytes / 2 - FP16_FILE  # no conversion copy, little read
    assert b.peak_bytes < a.peak_bytes / 2
    # memory-mapped pages are handed back after each phase: the peak holds the UNet, not every component
    assert b.peak_bytes < b.base_bytes + b.weight_bytes
    # the fp8 UNet replaces the fp16 pages the load read for it (handed back right after the load)
    assert estimate(fp16, Strategy.BALANCED).peak_bytes < b.peak_bytes - SD15["unet_params"] // 2
