"""``ml-diffusion plan`` without --model: checkpoint chosen from the catalog, LoRAs recommended; --no-auto."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters

W = fakes.write_fake_safetensors


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    root = tmp_path / "webui"
    W(root / "models/Stable-diffusion/dream.safetensors", fakes.checkpoint_keys("sd1"))
    meta = adapters.kohya_metadata(tags={"10_sks dog": {"dog": 7, "grass": 3}})
    W(root / "models/Lora/dog.safetensors", adapters.lora_keys("sd1"), meta)
    W(root / "models/Lora/dog_xl.safetensors", adapters.lora_keys("sdxl"), meta)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert invoke("models", "scan", "--root", str(root)).exit_code == 0
    return invoke


def test_plan_chooses_checkpoint_and_lora(run) -> None:
    result = run("plan", "a sks dog running on grass", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["model"]["name"] == "dream"
    assert [lora["name"] for lora in plan["loras"]] == ["dog"]  # the sd1 LoRA, never the sdxl one
    sources = {d["field"]: d["source"] for d in plan["decisions"]}
    assert sources["model"] == "catalog" and sources["lora"] == "catalog"


def test_no_auto_turns_choices_off(run) -> None:
    result = run("plan", "a sks dog running on grass", "--no-auto")
    assert result.exit_code == 2 and "No model given" in result.output
    result = run("plan", "a sks dog running on grass", "--model", "dream", "--no-auto", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["loras"] == []


def test_real_checkpoints_win_over_the_builtin_demo(run) -> None:
    listed = json.loads(run("models", "list", "--kind", "checkpoint", "--json").output)
    assert {r["name"] for r in listed} == {"dream", "demo"}  # the demo is catalogued as a built-in
    plan = json.loads(run("plan", "a red circle on the left", "--json").output)
    assert plan["model"]["name"] == "dream"


def test_no_model_anywhere_falls_back_to_the_demo_with_a_notice(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "fresh"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    runner = CliRunner()
    plan = json.loads(runner.invoke(app, ["plan", "a red circle on the left", "--json"]).output)
    assert (plan["model"]["family"], plan["width"], plan["height"], plan["sampler"]) == (
        "demo",
        64,
        64,
        "DDIM",
    )
    (model,) = [d for d in plan["decisions"] if d["field"] == "model"]
    assert "built-in demo model" in model["reason"] and "ML_DIFFUSION_MODELS" in model["reason"]
    assert plan["loras"] == []  # the style LoRA only with its trigger word
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "fresh-again"))  # the very first request
    styled = json.loads(runner.invoke(app, ["plan", "a dmoutline red circle", "--json"]).output)
    assert [lora["name"] for lora in styled["loras"]] == ["dmoutline"]


def test_demo_controlnet_by_catalog_name_is_named_so_in_the_infotext(tmp_path: Path, monkeypatch) -> None:
    """``--controlnet demo-controlnet:MASK``: resolved from the catalog, followed, and written as A1111 does."""
    from demo_kit.analysis import analyse, mask_iou
    from demo_kit.world import Scene, control_image, render
    from PIL import Image

    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    target = render(Scene("square", "blue", "big", "right", "white")).mask
    control_image(target).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["generate", "a big blue square on the right, white background", "--controlnet",
         f"demo-controlnet:{tmp_path / 'mask.png'}", "--seed", "1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (saved,) = out.glob("*.png")
    with Image.open(saved) as image:
        params = image.text["parameters"]
        pixels = np.asarray(image.convert("RGB"))
    assert 'ControlNet 0: "Module: none, Model: demo-controlnet, Weight: 1' in params
    assert mask_iou(analyse(pixels).mask, target) > 0.6


def test_demo_notice_names_the_words_outside_its_world(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    runner = CliRunner()
    out = str(tmp_path / "out")
    odd = runner.invoke(
        app, ["generate", "a (cat:1.2) on the left, masterpiece", "--steps", "2", "--out", out]
    )
    assert odd.exit_code == 0, odd.output
    assert "using the built-in 64x64 demo model" in odd.output and "not: cat, masterpiece." in odd.output
    known = runner.invoke(
        app, ["generate", "dmoutline, a small red star at the top", "--steps", "2", "--out", out]
    )
    assert known.exit_code == 0 and "demo model" in known.output and "not:" not in known.output
