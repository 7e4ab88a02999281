"""``ml-diffusion models scan | list | show | hash | convert`` as a user drives them, and --model NAME."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters
from tests.unit.test_catalog_scan import canary_files

W = fakes.write_fake_safetensors


@pytest.fixture
def webui(tmp_path: Path) -> Path:
    root = tmp_path / "webui"
    W(root / "models/Stable-diffusion/dream.safetensors", fakes.checkpoint_keys("sd1"))
    tags = {"10_sks dog": {"dog": 7}}
    W(root / "models/Lora/a/dog.safetensors", adapters.lora_keys("sd1"), adapters.kohya_metadata(tags=tags))
    W(root / "models/Lora/b/dog.safetensors", adapters.lora_keys("sdxl"))
    W(root / "models/Lora/[red]odd.safetensors", adapters.lora_keys("sd1"))
    return root


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_scan_list_show_hash(run, webui: Path) -> None:
    scan = run("models", "scan", "--root", str(webui))
    assert scan.exit_code == 0, scan.output
    assert "7 models in 5 folders: 7 new" in scan.output  # 4 in the webui, 3 built-in
    report = json.loads(run("models", "scan", "--root", str(webui), "--json").output)
    assert report["unchanged"] == 7 and report["bytes_hashed"] == 0

    listing = run("models", "list", "--kind", "lora")
    assert listing.exit_code == 0 and "[red]odd" in listing.output and "dream" not in listing.output
    rows = json.loads(run("models", "list", "--family", "sd1", "--json").output)
    assert sorted(r["rel_name"] for r in rows) == ["[red]odd", "a/dog", "dream"]
    assert json.loads(run("models", "list", "--text", "sks", "--json").output)[0]["rel_name"] == "a/dog"

    show = run("models", "show", "a/dog")
    assert show.exit_code == 0 and "sks dog" in show.output and "dog (7)" in show.output
    assert json.loads(run("models", "show", "dream", "--json").output)["info"]["family"] == "sd1"
    ambiguous = run("models", "show", "dog")
    assert ambiguous.exit_code == 1 and "fits 2 catalogued models" in ambiguous.output

    hashed = json.loads(run("models", "hash", "dream", "--json").output)
    sha = hashlib.sha256((webui / "models/Stable-diffusion/dream.safetensors").read_bytes()).hexdigest()
    assert hashed[0]["hashes"]["sha256"] == sha
    table = run("models", "hash", "a/dog")
    dog = hashlib.sha256((webui / "models/Lora/a/dog.safetensors").read_bytes()).hexdigest()
    assert table.exit_code == 0 and dog[:10] in table.output  # AutoV2
    assert run("models", "show", sha[:10]).exit_code == 0


def test_bad_requests_are_one_line(run, webui: Path) -> None:
    result = run("models", "list", "--kind", "bogus")
    assert result.exit_code == 2 and "Unknown kind 'bogus'" in result.output
    result = run("models", "show", "nothing")
    assert result.exit_code == 1 and "models scan --root" in result.output
    result = run("models", "scan")  # no roots: only the built-ins, and how to add real models
    assert result.exit_code == 0 and "Only the built-in demo models" in result.output


def test_builtins_are_listed_as_demo_family(run) -> None:
    assert run("models", "scan").exit_code == 0
    listed = run("models", "list", "--json")
    records = {r["name"]: r for r in json.loads(listed.output)}
    assert {n: (r["info"]["kind"], r["info"]["family"], r["layout"]) for n, r in records.items()} == {
        "demo": ("checkpoint", "demo", "builtin"),
        "dmoutline": ("lora", "demo", "builtin"),
        "demo-controlnet": ("controlnet", "demo", "builtin"),
    }
    assert records["dmoutline"]["info"]["lora"]["trigger_words"] == ["dmoutline"]
    assert "demo (built-in)" in run("models", "list", "--kind", "checkpoint").output


def test_demo_single_file_export_is_catalogued_and_generates(run, tmp_path: Path) -> None:
    """The demo exported as an A1111 single file: the catalog files it as a demo checkpoint, generate loads it."""
    from demo_kit.export import export_single_file
    from PIL import Image

    from ml_lib.diffusion.demo.assets import demo_folder, has_demo_model

    if not has_demo_model():
        pytest.skip("no shipped demo model")
    stable = tmp_path / "webui/models/Stable-diffusion"
    stable.mkdir(parents=True)
    export_single_file(demo_folder(), stable / "mydemo.safetensors")
    assert (stable / "mydemo.config/model_index.json").is_file()
    assert run("models", "scan", "--root", str(tmp_path / "webui")).exit_code == 0
    record = json.loads(run("models", "show", "mydemo", "--json").output)
    assert (record["info"]["kind"], record["info"]["family"], record["layout"]) == (
        "checkpoint",
        "demo",
        "a1111",
    )
    out = tmp_path / "out"
    result = run(
        "generate", "a red circle on the left", "--model", "mydemo", "--steps", "4", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    (saved,) = out.glob("*.png")
    with Image.open(saved) as image:
        assert image.size == (64, 64) and "Model: mydemo" in image.text["parameters"]


def test_convert_needs_opt_in_and_refuses_code(run, tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "ckpts"
    folder.mkdir()
    torch.save(
        {"state_dict": {"w": torch.ones(2, 3), "b": torch.zeros(3)}, "global_step": 7}, folder / "old.ckpt"
    )
    canary_files(folder, tmp_path / "CANARY")
    scan = run("models", "scan", "--root", str(folder), "--json")
    assert json.loads(scan.output)["unsafe"] == 2

    refused = run("models", "convert", "old")
    assert refused.exit_code == 1 and "--allow-pickle" in refused.output
    done = run("models", "convert", "old", "--allow-pickle", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["tensors"] == 2 and (folder / "old.safetensors").is_file()
    again = json.loads(run("models", "scan", "--root", str(folder), "--json").output)
    assert again["new"] == 1

    evil = run("models", "convert", "evil", "--allow-pickle")
    assert evil.exit_code == 1 and "weights_only" in evil.output
    assert not (tmp_path / "CANARY").exists() and not (folder / "evil.safetensors").exists()


def test_model_name_from_the_catalog_roots(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml_lib.diffusion.testing.tiny import write_tiny_model

    tiny = write_tiny_model("sd1", tmp_path / "models")
    monkeypatch.setenv("ML_DIFFUSION_MODELS", str(tmp_path / "models"))
    result = run("plan", "a fox", "--model", tiny.single_file.stem.upper(), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["model"]["reference"] == str(tiny.single_file) and plan["model"]["family"] == "sd1"
