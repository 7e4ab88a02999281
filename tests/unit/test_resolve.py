"""Resolving --model references: paths, config folders, pickles, Hub ids offline; hashing and the DB."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.hashing import HashCache, autov2, sha256_file
from ml_lib.diffusion.db import MIGRATIONS, connect, schema_version
from ml_lib.diffusion.errors import ConfigError, ModelNotFoundError, OfflineError, UnsupportedModelError
from ml_lib.diffusion.plan import ModelFormat
from ml_lib.diffusion.resolve.checkpoint import beside_config_dir, resolve_model, shipped_config_dir

from ._safetensors import FLUX, SD1, UNET_K, write_fake_safetensors


@pytest.fixture
def hashes(tmp_path: Path) -> HashCache:
    return HashCache(connect(tmp_path / "db" / "x.sqlite3"))


def test_standard_single_file_uses_shipped_config(tmp_path: Path, hashes: HashCache) -> None:
    path = write_fake_safetensors(tmp_path / "dream.safetensors", SD1)
    ref = resolve_model(str(path), hashes=hashes)
    assert ref.format is ModelFormat.SINGLE_FILE and ref.family == "sd1" and ref.name == "dream"
    assert ref.config_dir == str(shipped_config_dir(*_family("sd1")))
    assert ref.hash == hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def _family(name: str):
    from ml_lib.diffusion.catalog.families import Family, PredictionType

    return Family(name), PredictionType.EPSILON


def test_unusual_single_file_needs_config(tmp_path: Path) -> None:
    tiny = write_fake_safetensors(tmp_path / "tiny.safetensors", {**SD1, UNET_K: ("F32", (32, 32))})
    with pytest.raises(UnsupportedModelError, match=r"--config DIR.*tiny\.config/"):
        resolve_model(str(tiny))
    beside = beside_config_dir(tiny)
    beside.mkdir()
    (beside / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    ref = resolve_model(str(tiny))
    assert ref.config_dir == str(beside) and ref.family == "sd1"
    explicit = tmp_path / "elsewhere"
    explicit.mkdir()
    (explicit / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    with pytest.raises(UnsupportedModelError, match=r"is for a sdxl pipeline but tiny\.safetensors is a sd1"):
        resolve_model(str(tiny), config_dir=str(explicit))
    (explicit / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (explicit / "scheduler").mkdir()
    (explicit / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"prediction_type": "v_prediction"})
    )
    explicit_ref = resolve_model(str(tiny), config_dir=str(explicit))
    assert (explicit_ref.family, explicit_ref.prediction_type) == ("sd1", "v_prediction")
    with pytest.raises(ModelNotFoundError, match=r"no model_index\.json"):
        resolve_model(str(tiny), config_dir=str(tmp_path / "missing"))


def test_unsupported_family_and_pickles(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match="flux model"):
        resolve_model(str(write_fake_safetensors(tmp_path / "flux.safetensors", FLUX)))
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 pickle")
    with pytest.raises(UnsupportedModelError, match="pickle"):
        resolve_model(str(ckpt))


def test_missing_paths_and_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not an existing file"):
        resolve_model(str(tmp_path / "nope.safetensors"))
    with pytest.raises(ModelNotFoundError, match=r"without model_index\.json"):
        resolve_model(str(tmp_path))


def test_hub_id_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(OfflineError, match=r"hf download someone/some-model"):
        resolve_model("someone/some-model")


def test_hash_cache_computes_once(tmp_path: Path, hashes: HashCache, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello world")
    expected = hashlib.sha256(b"hello world").hexdigest()
    assert hashes.sha256(path) == expected == sha256_file(path)
    assert autov2(expected) == expected[:10]
    calls = []
    monkeypatch.setattr("ml_lib.diffusion.catalog.hashing.sha256_file", lambda p: calls.append(p) or "x")
    assert hashes.sha256(path) == expected and calls == []
    path.write_bytes(b"changed")
    os.utime(path, ns=(1, 1))
    assert hashes.sha256(path) == "x" and len(calls) == 1


def test_migrations_apply_once_and_refuse_newer(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite3"
    conn = connect(db)
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    connect(db).close()  # second open: nothing to migrate, no error
    conn = connect(db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="newer than this ml-lib"):
        connect(db)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("style", ("style", 1.0, None)),
        ("style:0.8", ("style", 0.8, None)),
        ("style:0.4:0.9", ("style", 0.9, 0.4)),
        ("C:/loras/x.safetensors:0.5", ("C:/loras/x.safetensors", 0.5, None)),
        ("a:b", ("a:b", 1.0, None)),
    ],
)
def test_parse_lora_arg(text: str, expected: tuple) -> None:
    from ml_lib.diffusion.resolve.loras import parse_lora_arg

    assert parse_lora_arg(text) == expected
