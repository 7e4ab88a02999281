"""Pool budgets: sizes parsed (bad ones are ConfigErrors), defaults from the device, the LRU choice."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.errors import ConfigError
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.pool_budget import (
    PoolBudget,
    Resident,
    choose_victims,
    default_budget,
    expected_bytes,
    parse_budget,
    parse_size,
)
from ml_lib.diffusion.settings import Settings

GB = 10**9


@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8 * GB), ("8 gb", 8 * GB), ("512MiB", 512 * 2**20), ("1.5g", 1_500_000_000), (4096, 4096)],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "lots", "8XB", "-1GB", "0", 0, "GB", "8 G B"])
def test_bad_sizes_are_config_errors(bad: str | int) -> None:
    with pytest.raises(ConfigError, match="pool budget"):
        parse_size(bad)


def test_budget_forms() -> None:
    assert parse_budget("8GB", "cpu") == PoolBudget(ram=8 * GB)
    assert parse_budget("8GB", "cuda") == PoolBudget(vram=8 * GB)
    assert parse_budget("ram=16GB, vram=6GB") == PoolBudget(16 * GB, 6 * GB)
    assert parse_budget(None) is None
    for bad in ("disk=4GB", "ram=1GB,ram=2GB", "ram=", "vram=big"):
        with pytest.raises(ConfigError):
            parse_budget(bad)


def test_defaults_come_from_the_device_and_an_override_wins() -> None:
    cpu = DeviceInfo("cpu", ram_total=16 * GB)
    assert default_budget(cpu) == PoolBudget(ram=8 * GB)
    gpu = DeviceInfo("cuda", total_memory=8 * GB, free_memory=7 * GB, ram_total=32 * GB)
    assert default_budget(gpu) == PoolBudget(16 * GB, 6 * GB)
    assert default_budget(gpu, PoolBudget(vram=4 * GB)) == PoolBudget(16 * GB, 4 * GB)
    assert default_budget(DeviceInfo("cpu")) == PoolBudget()


def test_expected_bytes_follow_the_estimate() -> None:
    params = (860_000_000, 123_000_000, 84_000_000)  # SD1.5
    ram, vram = expected_bytes("sd1", params, dtype="float32", device="cpu", strategy="none")
    assert vram == 0 and ram == sum(params) * 4
    fp8, _ = expected_bytes("sd1", params, dtype="float32", device="cpu", strategy="balanced")
    assert fp8 == 860_000_000 + (123_000_000 + 84_000_000) * 4  # the UNet stored in fp8
    assert expected_bytes("sd1", params, dtype="float16", device="cuda", strategy="none") == (
        0,
        sum(params) * 2,
    )
    ram, vram = expected_bytes("sd1", params, dtype="float16", device="cuda", strategy="sequential")
    assert ram == sum(params) * 2 and 0 < vram < ram // 10


def test_lru_choice_skips_pins_and_stops_when_it_fits() -> None:
    residents = [Resident("a", 4, 0, False), Resident("b", 4, 0, True), Resident("c", 4, 0, False)]
    assert choose_victims(residents, (2, 0), PoolBudget(ram=10)) == (["a"], True)
    assert choose_victims(residents, (6, 0), PoolBudget(ram=10)) == (["a", "c"], True)
    assert choose_victims(residents, (8, 0), PoolBudget(ram=10)) == (["a", "c"], False)  # b is pinned
    assert choose_victims(residents, (1, 5), PoolBudget(ram=100, vram=4)) == (["a", "c"], False)
    assert choose_victims(residents, (99, 0), PoolBudget()) == ([], True)


def test_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_DIFFUSION_POOL_BUDGET", "ram=2GB")
    assert Settings().pool_budget == "ram=2GB"
    from ml_lib.diffusion import ImageGenerator

    monkeypatch.setenv("ML_DIFFUSION_POOL_BUDGET", "two gigs")
    with pytest.raises(ConfigError, match="two gigs"):
        ImageGenerator(Settings())
    with pytest.raises(ConfigError, match="not a size"):
        ImageGenerator(Settings(pool_budget=None), pool_budget="8XB")
