"""Rescans (moved, vanished, changed files), bad input recorded with reasons, and --model NAME resolution."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog import identify, walk
from ml_lib.diffusion.catalog.catalog import Catalog
from ml_lib.diffusion.catalog.records import ModelKind, Status
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.errors import AmbiguousModelError, ModelNotFoundError
from ml_lib.diffusion.resolve.checkpoint import resolve_model
from ml_lib.diffusion.resolve.known import KnownModels
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters

from .test_catalog_scan import canary_files

W = fakes.write_fake_safetensors


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def catalog(tmp_path: Path, root: Path) -> Catalog:
    return Catalog(connect(tmp_path / "db.sqlite3"), [root], builtins=False)


def _write_data(path: Path, keys: fakes.Keys, fill: bytes) -> Path:
    """A fake whose data section holds real bytes (so that copies and hashes differ by content)."""
    W(path, keys)
    with path.open("r+b") as fh:
        fh.seek(-len(fill), os.SEEK_END)
        fh.write(fill)
    return path


def test_moved_file_keeps_its_record_and_hashes(root: Path, catalog: Catalog) -> None:
    lora = _write_data(root / "a.safetensors", adapters.lora_keys("sd1"), b"unique bytes")
    catalog.scan()
    (hashed,) = catalog.hash([catalog.get("a")])
    first_seen = hashed.first_seen
    (root / "sub").mkdir()
    moved = root / "sub" / "renamed.safetensors"
    lora.rename(moved)
    report = catalog.scan()
    assert [(m.old, m.new, m.evidence) for m in report.moved] == [(str(lora), str(moved), "same sha256")]
    assert (report.new, report.missing) == (0, 0)
    record = catalog.get("sub/renamed")
    assert record.hashes == hashed.hashes and record.first_seen == first_seen
    assert catalog.store.get(str(lora)) is None
    assert catalog.get(hashed.hashes.autov2 or "").path == str(moved)


def test_move_without_hash_uses_size_mtime_and_header(root: Path, catalog: Catalog) -> None:
    path = W(root / "x.safetensors", adapters.embedding_keys())
    catalog.scan()
    path.rename(root / "y.safetensors")
    assert catalog.scan().moved[0].evidence.startswith("same size, modification time and header")
    # A copy with another mtime and no known hash is a new model; the original is missing.
    shutil.copy(root / "y.safetensors", root / "z.safetensors")
    (root / "y.safetensors").unlink()
    report = catalog.scan()
    assert (report.new, report.missing, report.moved) == (1, 1, ())


def test_vanished_files_are_marked_missing_and_come_back(root: Path, catalog: Catalog) -> None:
    path = W(root / "gone.safetensors", fakes.vae_keys())
    catalog.scan()
    hidden = path.rename(root.parent / "elsewhere.bin")
    report = catalog.scan()
    assert report.missing == 1
    assert catalog.find() == ()
    (missing,) = catalog.find(statuses=(Status.MISSING,))
    assert missing.kind is ModelKind.VAE and "not found at the scan" in missing.info.reason
    assert catalog.lookup("gone") is None
    hidden.rename(path)
    assert catalog.scan().changed == 1 and catalog.get("gone").status is Status.OK


def test_changed_file_and_sidecar_are_probed_again(root: Path, catalog: Catalog) -> None:
    path = W(root / "m.safetensors", adapters.lora_keys("sd1"))
    catalog.scan()
    (root / "m.json").write_text(json.dumps({"activation text": "my trigger"}))
    report = catalog.scan()
    assert report.changed == 1 and catalog.get("m").trigger_words == ("my trigger",)
    W(path, adapters.lora_keys("sdxl"))
    os.utime(path, ns=(1, 1))
    assert catalog.scan().changed == 1 and catalog.get("m").family.value == "sdxl"


def _h(header: bytes) -> bytes:
    return struct.pack("<Q", len(header)) + header


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bad_files_are_recorded_with_reasons_and_the_scan_goes_on(root: Path, catalog: Catalog) -> None:
    good = W(root / "good.safetensors", adapters.embedding_keys())
    head = json.dumps({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                       "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}}).encode()  # fmt: skip
    cases = {
        "zero": (b"", "too short"),
        "short": (b"\x10\x00", "too short"),
        "huge": (struct.pack("<Q", 200 * 2**20) + b"{}", "over the 100 MB limit"),
        "past_eof": (struct.pack("<Q", 4096) + b"{}", "runs past the end"),
        "not_json": (struct.pack("<Q", 8) + b"not json", "not valid UTF-8 JSON"),
        "not_utf8": (struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc", "not valid UTF-8 JSON"),
        "dup": (_h(b'{"a":1,"a":2}'), "duplicate key"),
        "overlap": (struct.pack("<Q", len(head)) + head + b"\0" * 12, "overlap"),
        "meta": (_h(b'{"__metadata__":{"x":1.5}}'), "must map strings to strings"),
        "meta_list": (_h(b'{"__metadata__":{"x":[1]}}'), "strings to strings"),
    }
    for name, (data, _) in cases.items():
        _raw(root / f"{name}.safetensors", data)
    os.mkfifo(root / "fifo.safetensors")
    (root / "device.safetensors").symlink_to("/dev/null")
    (root / "dangling.safetensors").symlink_to(root / "nowhere")
    report = catalog.scan()
    records = {r.name: r for r in catalog.find()}
    assert records["good"].status is Status.OK
    for name, (_, reason) in cases.items():
        assert records[name].status is Status.BROKEN and reason in records[name].info.reason, name
    assert "a FIFO, not a regular file" in records["fifo"].info.reason
    assert "a character device" in records["device"].info.reason
    assert any("broken symlink" in p.reason for p in report.problems)
    assert report.broken == len(cases) + 2
    # Broken records are kept and rescans probe them again only when they change.
    assert catalog.scan().unchanged == report.files - 2  # FIFO and device are always re-checked
    assert good.exists()


def test_canary_pickles_are_catalogued_never_run(root: Path, catalog: Catalog, tmp_path: Path) -> None:
    canary_files(root, tmp_path / "CANARY")
    catalog.scan()
    catalog.hash()
    statuses = {r.name: r.status for r in catalog.find()}
    assert statuses == {"evil": Status.UNSAFE, "evil_renamed": Status.BROKEN, "evil_zip": Status.BROKEN}
    assert catalog.get("evil").hashes.sha256  # hashing reads bytes, it never unpickles
    assert not (tmp_path / "CANARY").exists()


def test_unreadable_folders_and_files(root: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    W(root / "ok" / "fine.safetensors", adapters.embedding_keys())
    W(root / "locked" / "secret.safetensors", adapters.embedding_keys())
    W(root / "denied.safetensors", adapters.embedding_keys())
    real_scandir, real_open = os.scandir, os.open

    def scandir(path: object) -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)  # type: ignore[arg-type]

    def open_(path: object, *args: object, **kw: object) -> int:
        if str(path).endswith("denied.safetensors"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(walk.os, "scandir", scandir)
    monkeypatch.setattr("ml_lib.diffusion.catalog.header.os.open", open_)
    report = catalog.scan()
    assert any(p.path.endswith("locked") and "Permission denied" in p.reason for p in report.problems)
    records = {r.name: r for r in catalog.find()}
    assert records["fine"].status is Status.OK and "secret" not in records
    assert records["denied"].status is Status.BROKEN and "Permission denied" in records["denied"].info.reason


def test_symlinks_followed_once_and_loops_reported(root: Path, catalog: Catalog, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    W(outside / "linked.safetensors", adapters.embedding_keys())
    (root / "link").symlink_to(outside)
    (root / "link_again").symlink_to(outside)
    (outside / "loop").symlink_to(root)
    report = catalog.scan()
    assert [r.rel_name for r in catalog.find()] in (["link/linked"], ["link_again/linked"])
    assert any("symlink loop" in p.reason for p in report.problems)


def test_file_replaced_during_the_scan(root: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    path = W(root / "swap.safetensors", adapters.lora_keys("sd1"))
    real = identify.read_header

    def replace_then_read(p: Path) -> object:
        tmp = W(root / ".tmp-new", adapters.lora_keys("sdxl"))
        os.replace(tmp, path)
        return real(p)

    monkeypatch.setattr(identify, "read_header", replace_then_read)
    catalog.scan()
    record = catalog.get("swap")
    assert record.family.value == "sdxl" and "replaced during the scan" in record.info.reason
    assert (record.size, record.mtime_ns) == (path.stat().st_size, path.stat().st_mtime_ns)


def test_model_name_resolves_through_the_catalog(root: Path, catalog: Catalog) -> None:
    W(root / "sd15" / "DreamShaper_8.safetensors", fakes.checkpoint_keys("sd1"))
    ref = resolve_model(
        "dreamshaper_8", lookup=KnownModels(catalog).named
    )  # not scanned yet: resolving scans once
    assert ref.family == "sd1" and ref.reference == str(root / "sd15" / "DreamShaper_8.safetensors")
    W(root / "other" / "dreamshaper_8.safetensors", fakes.checkpoint_keys("sdxl"))
    catalog.scan()
    with pytest.raises(AmbiguousModelError, match="sd15/DreamShaper_8"):
        resolve_model("dreamshaper_8", lookup=KnownModels(catalog).named)
    assert resolve_model("other/dreamshaper_8", lookup=KnownModels(catalog).named).family == "sdxl"
    with pytest.raises(ModelNotFoundError, match="catalogued model name"):
        resolve_model("nothing_like_it.safetensors", lookup=KnownModels(catalog).named)
