"""The hallway as a user meets it: `plan` takes every `generate` option and writes nothing; refusals come
from the resolve step before anything loads; model-based ControlNet preprocessors run from the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components, write_tiny_model
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_controlnet, write_tiny_lora


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hallway")
    tiny: TinyModelFiles = write_tiny_model("sd1", root / "models")
    pipe = tiny_sd1_components()
    image = Image.new("RGB", (64, 64), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(230, 40, 40))
    image.save(root / "scene.png")
    return {
        "model": tiny.single_file,
        "lora": write_tiny_lora(pipe, root / "loras" / "style.safetensors", seed=5),
        "cn": write_tiny_controlnet(pipe, root / "cn", seed=1, sees_image=True),
        "scene": root / "scene.png",
        "root": root,
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    return tmp_path / "home"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _rows(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_plan_takes_every_generate_option_and_writes_nothing(files: dict[str, Path], home: Path) -> None:
    args = (
        "plan", "a ball", "--model", str(files["model"]), "--lora", f"{files['lora']}:0.7",
        "--init-image", str(files["scene"]), "--strength", "0.5",
        "--controlnet", f"{files['cn']}:{files['scene']}:0.8", "--size", "64x64", "--steps", "4",
        "--out", str(home / "elsewhere"), "--json",
    )  # fmt: skip
    invoke(*args[:-1])  # a first plan creates the (empty) database; what follows must change nothing
    before = _rows(home / "ml-diffusion.sqlite3")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [lo["name"] for lo in plan["loras"]] == ["style"] and plan["loras"][0]["unet_weight"] == 0.7
    assert plan["init"]["strength"] == 0.5 and plan["controls"][0]["scale"] == 0.8
    stored = Path(plan["init"]["image"]["path"])
    assert stored.parent == home / "inputs" and not stored.exists()  # named, not written
    assert not (home / "inputs").exists() and not (home / "elsewhere").exists()
    assert _rows(home / "ml-diffusion.sqlite3") == before  # no hash, no catalog row written


def test_generate_then_writes_the_staged_inputs(files: dict[str, Path], home: Path) -> None:
    out = home / "out"
    result = invoke(
        "generate", "a ball", "--model", str(files["model"]), "--init-image", str(files["scene"]),
        "--size", "64x64", "--steps", "4", "--seed", "3", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((home / "inputs").rglob("*.png"))) == 1 and len(list(out.glob("*.png"))) == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "no-such-folder", "No ControlNet at"),
        (lambda root: root / "models", "has no config.json"),
    ],
)
def test_a_bad_controlnet_is_one_line_from_the_resolve_step(files, home, make, message) -> None:  # type: ignore[no-untyped-def]
    result = invoke(
        "plan", "a ball", "--model", str(files["model"]),
        "--controlnet", f"{make(files['root'])}:{files['scene']}",
    )  # fmt: skip
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_lineart_preprocessor_runs_from_the_cli(
    files: dict[str, Path], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("einops")
    from ml_lib.diffusion.engine.annotators import detector_class
    from ml_lib.diffusion.errors import AnnotatorUnavailableError

    try:
        detector_class("lineart")
    except AnnotatorUnavailableError:
        pytest.skip("controlnet_aux is not installed (pip install --no-deps controlnet-aux)")
    from ml_lib.diffusion.testing.tiny_annotators import write_tiny_annotator

    annotators = tmp_path / "annotators"
    monkeypatch.setenv("ML_DIFFUSION_ANNOTATORS", str(annotators))
    base = (
        "generate", "a ball", "--model", str(files["model"]), "--size", "64x64", "--steps", "3",
        "--seed", "5", "--controlnet", f"{files['cn']}:{files['scene']}:1.0",
    )  # fmt: skip
    missing = invoke(*base, "--control-type", "lineart", "--out", str(tmp_path / "a"))
    assert missing.exit_code == 1 and "sk_model.pth" in missing.output and "Traceback" not in missing.output
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").iterdir())
    write_tiny_annotator("lineart", annotators, seed=0)
    lineart = invoke(*base, "--control-type", "lineart", "--out", str(tmp_path / "b"))
    plain = invoke(*base, "--control-type", "none", "--out", str(tmp_path / "c"))
    assert lineart.exit_code == 0 and plain.exit_code == 0, lineart.output + plain.output
    (a,), (b,) = (tmp_path / "b").glob("*.png"), (tmp_path / "c").glob("*.png")
    difference = np.abs(np.asarray(Image.open(a), np.int16) - np.asarray(Image.open(b), np.int16))
    assert difference.mean() > 0.5  # the line map, not the raw scene, steered the ControlNet
