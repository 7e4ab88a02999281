"""``plan --device/--vram/--ram`` (what-if hardware), ``generate --device`` refusing a missing device,
``generate --verbose`` and the memory figures in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.tiny import TinyModelFiles

from .._whatif_models import write_models
from .first_hour_kit import one_line_error, tiny_args


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    home = tmp_path_factory.mktemp("cli-whatif") / "home"
    return home, write_models(home.parent, Settings(home=home).db_path)


@pytest.fixture
def run_home(run, models, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(models[0]))
    return run


def test_plan_as_if_on_a_6_gb_gpu(run_home, models) -> None:  # type: ignore[no-untyped-def]
    xl = str(models[1]["sdxl"])
    result = run_home(
        "plan", "a fox", "--model", xl, "--size", "1024x1024", "--device", "cuda", "--vram", "6GB"
    )
    assert result.exit_code == 0, result.output
    last = " ".join(result.stdout.split())  # the summary line, however the terminal wrapped it
    assert "memory on what-if: CUDA GPU, VRAM 6 GB: strategy sequential, estimate ~2.6 GB" in last
    assert "budget 6.0 GB free VRAM — sdxl 1024x1024 needs ~9.3 GB" in last
    args = ("plan", "a fox", "--model", xl, "--size", "1024x1024", "--vram", "24GB", "--json")
    plan = json.loads(run_home(*args).stdout)
    assert (plan["device"], plan["dtype"]) == ("cuda", "float16")  # --vram alone means a CUDA GPU
    assert plan["memory"] == {"strategy": "none", "estimated_peak_bytes": plan["memory"]["estimated_peak_bytes"],
                              "budget_bytes": 24 * 10**9}  # fmt: skip


def test_plan_as_if_on_an_8_gb_laptop(run_home, models) -> None:  # type: ignore[no-untyped-def]
    sd = str(models[1]["sd1"])

    def plan(ram: str, size: str = "512x512") -> dict[str, object]:
        args = ("plan", "a fox", "--model", sd, "--size", size, "--ram", ram, "--json")
        return json.loads(run_home(*args).stdout)  # type: ignore[no-any-return]

    laptop = plan("8GB")  # the fp16 file kept in fp16 (the CPU policy) is what makes it fit
    assert laptop["device"] == "cpu" and laptop["storage_dtype"] == "float16"
    assert laptop["memory"] == {"strategy": "none", "budget_bytes": 6 * 10**9} | {
        "estimated_peak_bytes": laptop["memory"]["estimated_peak_bytes"]  # type: ignore[index]
    }
    small = plan("3GB", "256x256")  # the UNet stored in fp8 is what makes it fit
    assert small["memory"]["strategy"] == "balanced"  # type: ignore[index]
    tiny_ram = plan("2GB")  # nothing fits: the leanest strategy that still computes everything, flagged
    (decision,) = [d for d in tiny_ram["decisions"] if d["field"] == "memory"]  # type: ignore[attr-defined]
    assert "may not fit" in decision["reason"]


def test_bad_what_if_options_are_one_line(run_home, models) -> None:  # type: ignore[no-untyped-def]
    sd = str(models[1]["sd1"])
    one_line_error(run_home("plan", "a fox", "--model", sd, "--device", "cpu", "--vram", "6GB"), 2, "--ram")
    one_line_error(run_home("plan", "a fox", "--model", sd, "--vram", "6XB"), 2, "write it like 6GB")
    one_line_error(run_home("plan", "a fox", "--model", sd, "--device", "cuda"), 2, "add --vram")


def test_generate_refuses_a_device_that_is_not_here(run, tiny: TinyModelFiles, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run(*tiny_args(tiny, tmp_path / "o", "--device", "cuda"))
    one_line_error(result, 2, "needs the cuda device, which this machine does not have (available: cpu)")
    assert not (tmp_path / "o").exists()


def test_generate_verbose_and_json_show_memory(run, tiny: TinyModelFiles, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run(*tiny_args(tiny, tmp_path / "o", "--verbose"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "time     load " in out and "peak     load RSS " in out and " decode RSS " in out
    assert "after cleanup" in out and "retry    none" in out
    assert "memory   strategy none · estimated " in out and "measured " in out
    as_json = json.loads(run(*tiny_args(tiny, tmp_path / "o", "--json")).stdout)
    assert set(as_json["memory"]) == {"load", "encode", "denoise", "decode", "rss_before", "rss_after"}
    assert as_json["memory"]["denoise"]["rss_peak"] > 0 and as_json["retries"] == []
