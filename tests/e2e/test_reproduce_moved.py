"""`reproduce` when the model moved or the image came from another machine: built-ins are named portably,
any other checkpoint is found again by its hash in the catalog (A1111's rule), saying which file it used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import write_tiny_model


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    root = tmp_path / "models"
    tiny = write_tiny_model("sd1", root)
    shutil.rmtree(tiny.diffusers_dir)  # one checkpoint in the root: the single file (+ its .config/)
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ML_DIFFUSION_MODELS", str(root))
    return {"root": root, "model": tiny.single_file, "config": tiny.config_dir, "out": tmp_path / "out"}


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _generate(env: dict[str, Path]) -> Path:
    result = invoke(
        "generate", "a lighthouse", "--model", str(env["model"]), "--size", "64x64", "--steps", "2",
        "--seed", "9", "--out", str(env["out"]),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (image,) = env["out"].glob("*.png")
    return image


def _move(env: dict[str, Path]) -> Path:
    moved = env["root"] / "moved"
    moved.mkdir()
    shutil.move(env["model"], moved / env["model"].name)
    shutil.move(env["config"], moved / env["config"].name)
    return moved / env["model"].name


def test_a_moved_checkpoint_is_found_by_its_hash(
    env: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    image = _generate(env)
    assert invoke("models", "scan", "--hash").exit_code == 0
    new_place = _move(env)
    assert invoke("models", "scan").exit_code == 0
    again = invoke("reproduce", str(image), "--out", str(env["out"] / "again"))
    assert again.exit_code == 0, again.output
    assert any(
        "is gone: using" in r.getMessage() and str(new_place) in r.getMessage() for r in caplog.records
    )
    (copy,) = (env["out"] / "again").glob("*.png")
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(image)))


def test_a_moved_checkpoint_without_a_known_hash_says_what_to_do(env: dict[str, Path]) -> None:
    image = _generate(env)
    _move(env)
    assert invoke("models", "scan").exit_code == 0  # catalogued, but never hashed
    result = invoke("reproduce", str(image), "--out", str(env["out"] / "again"))
    assert result.exit_code == 1 and "is gone" in result.output and "models hash" in result.output
    assert not (env["out"] / "again").exists() or not list((env["out"] / "again").iterdir())


def test_demo_images_name_the_built_in_portably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ml_lib.diffusion

    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    out = tmp_path / "out"
    result = invoke("generate", "a red circle on the left", "--seed", "2", "--steps", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    (image,) = out.glob("*.png")
    info = json.loads(invoke("info", str(image), "--json").stdout)
    assert info["plan"]["model"]["reference"] == "builtin:demo"
    assert str(Path(ml_lib.diffusion.__file__).parent) not in json.dumps(info["plan"])
