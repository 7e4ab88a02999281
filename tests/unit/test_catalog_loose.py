"""A root that looks like a ComfyUI or A1111 tree still has its loose model files catalogued."""

from __future__ import annotations

from pathlib import Path

from ml_lib.diffusion.catalog.catalog import Catalog
from ml_lib.diffusion.catalog.layouts import discover
from ml_lib.diffusion.catalog.records import ModelKind, Status
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters

W = fakes.write_fake_safetensors


def _scan(tmp_path: Path, root: Path) -> dict[str, object]:
    catalog = Catalog(connect(tmp_path / "db.sqlite3"), [root])
    catalog.scan()
    return {r.path: r for r in catalog.find(statuses=tuple(Status)) if r.root == str(root)}


def test_loose_checkpoints_beside_a_loras_folder_are_catalogued(tmp_path: Path) -> None:
    root = tmp_path / "stuff"
    W(root / "loras" / "style.safetensors", adapters.lora_keys("sd1"))
    W(root / "dream.safetensors", fakes.checkpoint_keys("sd1"))
    W(root / "sub" / "deeper.safetensors", fakes.checkpoint_keys("sd1"))  # not a ComfyUI folder: not walked
    found = _scan(tmp_path, root)
    kinds = {Path(p).name: r.kind for p, r in found.items()}  # type: ignore[attr-defined]
    assert kinds == {"style.safetensors": ModelKind.LORA, "dream.safetensors": ModelKind.CHECKPOINT}


def test_loose_files_beside_an_a1111_models_folder_are_catalogued(tmp_path: Path) -> None:
    root = tmp_path / "webui"
    W(root / "models" / "Stable-diffusion" / "a.safetensors", fakes.checkpoint_keys("sd1"))
    W(root / "b.safetensors", fakes.checkpoint_keys("sd1"))
    names = sorted(Path(p).name for p in _scan(tmp_path, root))
    assert names == ["a.safetensors", "b.safetensors"]


def test_a_plain_folder_is_still_walked_whole_and_once(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    W(root / "x.safetensors", fakes.checkpoint_keys("sd1"))
    W(root / "deep" / "y.safetensors", adapters.lora_keys("sd1"))
    layouts = [(d.layout, d.recursive) for d in discover(root).dirs]
    assert layouts == [("plain", True)]
    assert sorted(Path(p).name for p in _scan(tmp_path, root)) == ["x.safetensors", "y.safetensors"]


def test_the_loose_folder_comes_last_and_is_not_recursive(tmp_path: Path) -> None:
    root = tmp_path / "comfy"
    (root / "checkpoints").mkdir(parents=True)
    assert [(d.layout, d.recursive) for d in discover(root).dirs] == [("comfyui", True)]  # nothing loose
    (root / "notes.txt").write_text("not a model")
    assert len(discover(root).dirs) == 1
    W(root / "loose.safetensors", fakes.checkpoint_keys("sd1"))
    dirs = discover(root).dirs
    assert [(d.path, d.layout, d.recursive) for d in dirs] == [
        (root / "checkpoints", "comfyui", True),
        (root, "loose", False),
    ]
