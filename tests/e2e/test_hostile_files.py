"""Hostile files on disk, driven through ``ml-diffusion`` (issue 13; images and prompts: test_hostile.py).

FIFOs and devices in a model root, checkpoints whose shapes lie or whose weights are NaN, pickles that
would run code, a damaged database, a save killed with SIGKILL, a checkpoint deleted after a scan.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model

from .test_hostile import cli, files_under, invoke, one_error_line


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    return tmp_path / "home"


def _fast(tiny: TinyModelFiles, out: Path, *extra: str) -> list[str]:
    return [
        "a cat",
        "--model",
        str(tiny.single_file),
        "--size",
        "64x64",
        "--steps",
        "2",
        "--out",
        str(out),
        *extra,
    ]


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


# -- model roots -------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="FIFOs, /dev/zero")
def test_scan_and_hash_finish_on_a_fifo_and_dev_zero(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe.safetensors")
    (root / "zero.safetensors").symlink_to("/dev/zero")
    shutil.copy(tiny_sd1.single_file, root / "real.safetensors")
    scan = cli("models", "scan", "--root", str(root), timeout=60)
    assert scan.returncode == 0 and "Traceback" not in scan.stderr, scan.stderr
    assert "2 broken" in scan.stdout
    hashed = cli("models", "hash", "--json", timeout=60)  # every catalogued model: real, FIFO, /dev/zero
    assert hashed.returncode == 0 and "Traceback" not in hashed.stderr, hashed.stderr
    for name in ("pipe", "zero"):
        assert f"{root / name}.safetensors is not a regular file" in hashed.stderr
    records = {r["name"]: r for r in json.loads(hashed.stdout)}
    assert len(records["real"]["hashes"]["sha256"]) == 64  # one unreadable file does not stop the rest
    assert records["pipe"]["hashes"]["sha256"] is None and records["zero"]["hashes"]["sha256"] is None
    reasons = {r["name"]: (r["status"], r["info"]["reason"]) for r in records.values()}
    assert reasons["pipe"] == ("broken", "a FIFO, not a regular file; not opened")
    assert reasons["zero"] == ("broken", "a character device, not a regular file; not opened")


def _lying_copy(source: Path, target: Path) -> Path:
    """``source`` with one tensor's shape doubled in the header; byte ranges unchanged."""
    data = source.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    name = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 4)
    header[name]["shape"][0] *= 2
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    target.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + length :])
    return target


def test_a_checkpoint_whose_shapes_lie_is_broken_never_chosen(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    liar = _lying_copy(tiny_sd1.single_file, root / "liar.safetensors")
    scan = invoke("models", "scan", "--root", str(root))
    assert scan.exit_code == 0 and "1 broken" in scan.stdout
    plan = json.loads(invoke("plan", "a cat", "--json").stdout)
    assert plan["model"]["name"] == "demo"  # the only checkpoint on disk lies: not a candidate
    result = invoke("generate", "a cat", "--model", str(liar), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    one_error_line(result.stderr, "liar.safetensors: tensor", "but spans", "the file is damaged")
    assert not (tmp_path / "out").exists()


_ESCAPES = ("\x1b", "\x07", "\x9b", "\u202e")


def test_names_and_metadata_from_model_files_print_no_escape_sequences(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    from ml_lib.diffusion.testing import fakes
    from ml_lib.diffusion.testing import fakes_adapters as adapters

    root, name = tmp_path / "root", "ev\x1b[31mil\u202e"
    meta = adapters.kohya_metadata(tags={"10_x": {"red\x1b]0;owned\x07tag": 5}})
    fakes.write_fake_safetensors(root / f"{name}.safetensors", adapters.lora_keys("sd1"), meta)
    sidecar = {"trainedWords": ["trig\x1b[1mger\x9b"]}
    (root / f"{name}.civitai.info").write_text(json.dumps(sidecar))
    liar = _lying_copy(tiny_sd1.single_file, root / "li\x1b[2Jar.safetensors")
    outputs = [
        invoke("models", "scan", "--root", str(root)),
        invoke("models", "list"),
        invoke("models", "show", name),
    ]
    outputs.append(invoke("generate", "a cat", "--model", str(liar), "--out", str(tmp_path / "out")))
    for result in outputs:
        for bad in _ESCAPES:
            assert bad not in result.stdout and bad not in result.stderr, (result.stdout, result.stderr)
    assert "ev[31mil" in outputs[2].stdout and "red]0;ownedtag (5)" in outputs[2].stdout  # shown, defused
    assert "trig[1mger" in outputs[2].stdout
    one_error_line(outputs[3].stderr, "li[2Jar.safetensors: tensor")


def test_a_checkpoint_deleted_after_a_scan_is_no_longer_chosen(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    real_like = write_tiny_model("sd1", tmp_path / "unmarked", mark=False)  # test models are never chosen
    dream = tmp_path / "webui" / "models" / "Stable-diffusion" / "dream.safetensors"
    dream.parent.mkdir(parents=True)
    shutil.copy(real_like.single_file, dream)
    shutil.copytree(real_like.config_dir, dream.with_suffix(".config"))
    root = tmp_path / "webui"
    assert invoke("models", "scan", "--root", str(root)).exit_code == 0
    assert json.loads(invoke("plan", "a fox", "--json").stdout)["model"]["name"] == "dream"
    dream.unlink()
    result = invoke("plan", "a fox", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["name"] == "demo"  # no rescan needed


def test_model_demo_works_on_a_fresh_home(home: Path) -> None:
    result = invoke("plan", "a red circle", "--model", "demo", "--json")
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["model"]
    assert (model["name"], model["family"]) == ("demo", "demo") and not (home / "outputs").exists()


def test_a_checkpoint_with_nan_weights_is_refused_not_saved_black(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_sd1.single_file))
    tensors["model.diffusion_model.out.2.bias"] = torch.full_like(
        tensors["model.diffusion_model.out.2.bias"], float("nan")
    )
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata={"modelspec.title": "broken"})
    shutil.copytree(tiny_sd1.config_dir, tmp_path / "broken.config")
    out = tmp_path / "out"
    result = invoke(
        "generate", "a cat", "--model", str(broken), "--size", "64x64", "--steps", "2", "--out", str(out)
    )
    assert result.exit_code == 1
    one_error_line(
        result.stderr, "latents came out as NaN", "nothing was saved", "a broken model file (broken"
    )
    assert files_under(out) == []


# -- pickles ------------------------------------------------------------------------------------------
class _Trap:
    """Unpickling this creates ``marker``: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _trap(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"weight": _Trap(marker)}))
    return path


@pytest.mark.parametrize(
    "case", ["controlnet", "ip-adapter weights", "ip-adapter encoder", "diffusers model"]
)
def test_pickled_adapter_and_model_folders_are_refused_never_unpickled(
    case: str, tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    loads: list[object] = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or {})
    monkeypatch.setattr(pickle, "load", lambda *a, **k: loads.append(a) or {})
    marker, folder, image = tmp_path / "RAN", tmp_path / "adapter", tmp_path / "ref.png"
    Image.new("RGB", (64, 64), "white").save(image)
    model, extra = str(tiny_sd1.single_file), []
    if case == "controlnet":
        (folder / "config.json").parent.mkdir(parents=True)
        (folder / "config.json").write_text('{"_class_name": "ControlNetModel"}')
        _trap(folder / "diffusion_pytorch_model.bin", marker)
        extra = ["--controlnet", f"{folder}:{image}"]
    elif case.startswith("ip-adapter"):
        encoder = folder / "models" / "image_encoder"
        _trap(encoder / "pytorch_model.bin", marker)
        (encoder / "config.json").write_text("{}")
        if case == "ip-adapter weights":
            _trap(folder / "models" / "ip-adapter_sd15.bin", marker)
            extra = ["--ip-adapter-weights", "ip-adapter_sd15.bin"]
        else:
            shutil.copy(tiny_sd1.single_file, folder / "models" / "ip-adapter_sd15.safetensors")
        extra += ["--ip-adapter", f"{folder}:{image}"]
    else:
        shutil.copytree(tiny_sd1.diffusers_dir, folder)
        for weights in folder.glob("unet/*.safetensors"):
            weights.unlink()
        _trap(folder / "unet" / "diffusion_pytorch_model.bin", marker)
        model = str(folder)
    out = tmp_path / "out"
    result = invoke("generate", "a cat", "--model", model, *extra, "--out", str(out))
    assert result.exit_code == 1
    one_error_line(result.stderr, "a pickle file, which could run code and is never opened")
    assert not marker.exists() and loads == []
    assert not out.exists() and files_under(home / "inputs") == []


# -- the database ---------------------------------------------------------------------------------
def test_generate_with_a_model_path_on_a_truncated_database(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert cli("models", "scan").returncode == 0  # a real database (closed: no WAL), built-ins catalogued
    db = home / "ml-diffusion.sqlite3"
    with db.open("r+b") as fh:
        fh.truncate(db.stat().st_size // 3)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="ml_lib.diffusion.db"):
        result = invoke("generate", *_fast(tiny_sd1, out))
    assert result.exit_code == 0, result.output
    (aside,) = home.glob("ml-diffusion.sqlite3.damaged-*")
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "ml_lib.diffusion.db"]
    assert f"{db} was damaged" in warning and f"moved it to {aside}" in warning and "models scan" in warning
    assert len(_visible(out)) == 1


# -- saves ----------------------------------------------------------------------------------------
_HANGING_SAVE = """
import os, sys, time
from ml_lib.diffusion.output import metadata

def save(self, image, fp):
    fp.write(b"\\x89PNG\\r\\n\\x1a\\n half an image")
    fp.flush()
    open(os.environ["SAVE_STARTED"], "w").close()
    time.sleep(600)

metadata.SaveOptions.save = save
from ml_lib.diffusion.cli import main
sys.argv[0] = "ml-diffusion"
main()
"""


def test_kill_9_during_a_save_leaves_no_visible_file_and_the_next_save_cleans_up(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, out = tmp_path / "started", tmp_path / "out"
    monkeypatch.setenv("SAVE_STARTED", str(started))
    child = subprocess.Popen(
        [sys.executable, "-c", _HANGING_SAVE, "generate", *_fast(tiny_sd1, out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not started.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the save never started"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert _visible(out) == []  # nothing under a real name
    (temp,) = out.iterdir()
    assert temp.name.startswith(".tmp-") and temp.suffix == ".png"
    two_hours_ago = time.time() - 7200
    os.utime(temp, (two_hours_ago, two_hours_ago))
    result = invoke("generate", *_fast(tiny_sd1, out))
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [] and len(_visible(out)) == 1
