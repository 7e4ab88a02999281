"""The CLI as a user drives it: generate, info, reproduce, plan, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    return write_tiny_model("sd1", tmp_path_factory.mktemp("models"))


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def _generate_args(tiny: TinyModelFiles, out: Path, *extra: str) -> list[str]:
    return [
        "generate", "a lighthouse at dusk, (oil painting:1.2)", "--model", str(tiny.single_file),
        "--size", "64x64", "--steps", "2", "--sampler", "Euler a", "--out", str(out), *extra,
    ]  # fmt: skip


def test_generate_info_reproduce(run, tiny: TinyModelFiles, tmp_path: Path) -> None:
    result = run(*_generate_args(tiny, tmp_path / "out", "--seed", "42", "--batch", "2", "-n", "blurry"))
    assert result.exit_code == 0, result.output
    saved = sorted((tmp_path / "out").glob("*.png"))
    assert len(saved) == 2
    assert f"saved {saved[0]} (seed 42)" in result.output and "(seed 43)" in result.output

    info = run("info", str(saved[1]))
    assert info.exit_code == 0, info.output
    assert "a lighthouse at dusk, (oil painting:1.2)" in info.output
    assert "Negative prompt: blurry" in info.output and "43" in info.output and "Euler a" in info.output

    info_json = json.loads(run("info", str(saved[1]), "--json").stdout)
    assert info_json["parameters"]["Seed"] == "43" and info_json["plan"]["seed"] == 42

    again = run("reproduce", str(saved[1]), "--out", str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    (copy,) = (tmp_path / "again").glob("*.png")
    with Image.open(saved[1]) as a, Image.open(copy) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_generate_json_and_name_template(run, tiny: TinyModelFiles, tmp_path: Path) -> None:
    result = run(*_generate_args(tiny, tmp_path / "o", "--seed", "5", "--json", "--name", "[seed]-[sampler]"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["seeds"] == [5] and data["plan"]["sampler"] == "Euler a"
    assert Path(data["paths"][0]).name == "5-Euler a.png"
    assert set(data["timings"]) == {"load", "encode", "denoise", "decode", "save"}


def test_plan_shows_every_reason(run, tiny: TinyModelFiles) -> None:
    result = run("plan", "a fox", "--model", str(tiny.single_file), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["width"] == 64 and plan["steps"] == 4 and plan["model"]["family"] == "sd1"
    width = next(d for d in plan["decisions"] if d["field"] == "width")
    assert "test model with random weights" in width["reason"]  # tiny models plan tiny, and say why
    assert {d["field"] for d in plan["decisions"]} >= {"width", "steps", "sampler", "seed"}
    table = run("plan", "a [fox]", "--model", str(tiny.single_file))
    assert "[counter]" in table.output and "[seed]" in table.output  # user text is not read as markup


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--size", "65x64"], 2, "not a multiple of 8"),
        (["--size", "big"], 2, "is not WIDTHxHEIGHT"),
        (["--steps", "0"], 2, "steps must be between 1"),
        (["--sampler", "Warp"], 2, "Unknown sampler 'Warp'"),
        (["--name", "[nope]"], 2, "Unknown file name token"),
    ],
)
def test_bad_input_is_one_line(
    run, tiny: TinyModelFiles, tmp_path: Path, args, code: int, message: str
) -> None:
    result = run(*_generate_args(tiny, tmp_path / "o"), *args)
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_missing_model_and_image_without_plan(run, tmp_path: Path) -> None:
    result = run("generate", "x", "--model", str(tmp_path / "none.safetensors"))
    assert result.exit_code == 1 and "No model at" in result.output
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert "no generation metadata" in run("info", str(plain)).output
    result = run("reproduce", str(plain))
    assert result.exit_code == 1 and "carries no ml-diffusion plan" in result.output
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    assert run("info", str(garbage)).exit_code == 1


def test_console_script_runs(tiny: TinyModelFiles, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ml-diffusion")
    env = {**os.environ, "ML_DIFFUSION_HOME": str(tmp_path / "home")}
    args = _generate_args(tiny, tmp_path / "out", "--seed", "1")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "saved" in proc.stdout and len(list((tmp_path / "out").glob("*.png"))) == 1
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr
    debug = subprocess.run(
        [str(exe), "--debug", "generate", "x", "--model", str(tmp_path / "none.safetensors")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_jpeg_and_webp_carry_metadata_and_reproduce(
    run, tiny: TinyModelFiles, tmp_path: Path, fmt: str
) -> None:
    result = run(*_generate_args(tiny, tmp_path / "o", "--seed", "8", "--format", fmt))
    assert result.exit_code == 0, result.output
    (saved,) = (tmp_path / "o").iterdir()
    assert saved.suffix == {"jpeg": ".jpg", "webp": ".webp"}[fmt]
    info = json.loads(run("info", str(saved), "--json").stdout)
    assert info["parameters"]["Seed"] == "8" and info["plan"]["image_format"] == {"jpeg": "jpg"}.get(fmt, fmt)
    again = run("reproduce", str(saved), "--out", str(tmp_path / "r"))
    assert again.exit_code == 0, again.output
    assert len(list((tmp_path / "r").iterdir())) == 1


def test_lora_option(run, tiny: TinyModelFiles, tmp_path: Path) -> None:
    from ml_lib.diffusion.testing.tiny import tiny_sd1_components
    from ml_lib.diffusion.testing.tiny_adapters import write_tiny_lora

    lora = write_tiny_lora(tiny_sd1_components(), tmp_path / "my style.safetensors", seed=1)
    result = run(*_generate_args(tiny, tmp_path / "o", "--seed", "2", "--lora", f"{lora}:0.3:0.7", "--json"))
    assert result.exit_code == 0, result.output
    (use,) = json.loads(result.stdout)["plan"]["loras"]
    assert (use["name"], use["te_weight"], use["unet_weight"]) == ("my style", 0.3, 0.7)
    missing = run(*_generate_args(tiny, tmp_path / "o", "--lora", str(tmp_path / "nope.safetensors")))
    assert missing.exit_code == 1 and "No LoRA" in missing.output


def test_preset_scales_steps_and_unknown_preset_is_refused(run, tmp_path: Path) -> None:
    tiny = write_tiny_model("sd1", tmp_path / "unmarked", mark=False)  # planned like a real SD1 checkpoint
    fast = json.loads(
        run("plan", "a fox", "--model", str(tiny.single_file), "--preset", "speed", "--json").stdout
    )
    base = json.loads(run("plan", "a fox", "--model", str(tiny.single_file), "--json").stdout)
    assert fast["steps"] < base["steps"]
    bad = run("plan", "a fox", "--model", str(tiny.single_file), "--preset", "turbo")
    assert bad.exit_code == 2 and "Unknown preset 'turbo'" in bad.output


def test_readme_main_job_uses_the_demo_model_and_says_so(tmp_path: Path, monkeypatch) -> None:
    """The README's first command, as written there, on a machine with no models configured."""
    import shlex

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    line = next(x for x in readme.splitlines() if x.startswith("python3 -m venv"))
    args = shlex.split(line.split("&& ml-diffusion ", 1)[1])
    assert args[0] == "generate" and "--model" not in args
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    result = CliRunner().invoke(app, [*args, "--seed", "11", "--batch", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (
        "using the built-in 64x64 demo model" in result.output and "ml-diffusion models scan" in result.output
    )
    from demo_kit.analysis import analyse

    saved = sorted((tmp_path / "out").glob("*.png"))
    assert len(saved) == 2
    for path in saved:  # what the prompt asks for, in both images
        with Image.open(path) as image:
            assert image.size == (64, 64) and "demo" in image.text["parameters"]
            found = analyse(np.asarray(image.convert("RGB")))
        assert (found.color, found.position, found.shape) == ("red", "left", "circle"), path.name


def test_generate_frees_the_analyzer_encoder_before_the_model_loads(
    run, tiny: TinyModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One plan per process: the USE encoder (~125 MB) is released once planned, so the model has the memory."""
    from ml_lib.diffusion.facade import ImageGenerator
    from ml_lib.diffusion.prompt.use_evidence import _SHARED

    seen: list[bool] = []
    real_execute = ImageGenerator.execute

    def execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(_SHARED.loaded)
        return real_execute(self, *args, **kwargs)

    monkeypatch.setattr(ImageGenerator, "execute", execute)
    result = run(*_generate_args(tiny, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert seen == [False]  # the plan loaded it (the default analyzer reads every prompt), then it was freed
    _SHARED.get()  # the next prompt loads it again
    assert _SHARED.loaded
