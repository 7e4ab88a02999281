"""The hires fix, variation seed and batch count options of the CLI, as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    return write_tiny_model("sd1", tmp_path_factory.mktemp("models"))


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_plan_json_carries_every_option(run, tiny: TinyModelFiles) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "plan", "a fox", "--model", str(tiny.single_file), "--size", "64x64", "--seed", "3", "--json",
        "--hires", "--hires-scale", "1.5", "--hires-steps", "4", "--hires-upscaler", "Latent (nearest)",
        "--hires-denoise", "0.4", "--hires-sampler", "DDIM", "--hires-prompt", "sharp fox",
        "--variation-seed", "9", "--variation-strength", "0.2", "--seed-resize-from", "48x48",
        "--batch", "2", "--batch-count", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["hires"].pop("schedule") in ("", "Uniform")  # DDIM keeps the first schedule when it can
    assert plan["hires"] == {
        "upscaler": "Latent (nearest)", "scale": 1.5, "resize_width": 0, "resize_height": 0, "steps": 4,
        "denoise": 0.4, "sampler": "DDIM", "prompt": "sharp fox", "negative_prompt": "",
        "upscaler_path": None, "upscaler_hash": None,
    }  # fmt: skip
    assert plan["variation"] == {"seed": 9, "strength": 0.2, "resize_width": 48, "resize_height": 48}
    assert plan["batch_count"] == 3 and plan["batch_size"] == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--hires-resize", "big"], 2, "is not WIDTHxHEIGHT"),
        (["--hires-denoise", "0"], 2, "denoising strength must be above 0"),
        (["--hires-upscaler", "nope.pth"], 1, "is not a latent mode"),
        (["--refiner", "auto"], 2, "pairs a refiner with an SDXL base"),
        (["--variation-strength", "1.5"], 2, "variation strength must be between 0 and 1"),
        (["--batch-count", "0"], 2, "batch count must be between 1 and 100"),
    ],
)
def test_bad_values_are_one_line(run, tiny: TinyModelFiles, args: list[str], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    result = run("plan", "a fox", "--model", str(tiny.single_file), "--size", "64x64", *args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_pickled_upscaler_is_refused(run, tiny: TinyModelFiles, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pickle = tmp_path / "4x-UltraSharp.pth"
    pickle.write_bytes(b"not loaded")
    result = run(
        "plan", "a fox", "--model", str(tiny.single_file), "--size", "64x64", "--hires-upscaler", str(pickle)
    )
    assert result.exit_code != 0 and "pickle file" in result.output and "Traceback" not in result.output


def test_hires_checkpoint_is_planned_with_its_family_checked(
    run, tiny: TinyModelFiles, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    other = write_tiny_model("sd1", tmp_path / "b", seed=5)
    args = ("plan", "a fox", "--model", str(tiny.single_file), "--size", "64x64", "--json")
    result = run(*args, "--hires-checkpoint", str(other.single_file))
    assert result.exit_code == 0, result.output
    hires = json.loads(result.stdout)["hires"]  # --hires-checkpoint turns the hires fix on
    assert hires["checkpoint"]["reference"] == str(other.single_file.resolve())
    assert hires["checkpoint"]["family"] == "sd1" and len(hires["checkpoint"]["hash"]) == 10
    sd2 = write_tiny_model("sd2", tmp_path / "c")
    refused = run(*args, "--hires-checkpoint", str(sd2.single_file))
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "is a sd2 model but the first pass runs" in refused.output
