"""Catalog reads are cached per catalog state: invalidated by a catalog change, a deleted file, or a
commit from another connection (another process scanning)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ml_lib.diffusion.catalog.catalog import Catalog
from ml_lib.diffusion.catalog.records import ModelKind, ModelRecord
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.resolve.known import KnownModels
from ml_lib.diffusion.testing.records import lora_record

LORA = (ModelKind.LORA,)


def _on_disk(folder: Path, name: str) -> ModelRecord:
    path = folder / f"{name}.safetensors"
    path.touch()
    return dataclasses.replace(lora_record(name), path=str(path), root=str(folder))


def _known(tmp_path: Path) -> tuple[KnownModels, Catalog, Path]:
    folder = tmp_path / "loras"
    folder.mkdir()
    catalog = Catalog(connect(tmp_path / "db.sqlite3"), builtins=False)
    with catalog.store.transaction():
        catalog.store.put([_on_disk(folder, "a"), _on_disk(folder, "b")])
    return KnownModels(catalog), catalog, folder


def test_same_tuple_while_nothing_changes(tmp_path: Path) -> None:
    known, _, _ = _known(tmp_path)
    first = known.usable(LORA)
    assert sorted(r.name for r in first) == ["a", "b"]
    assert known.usable(LORA) is first


def test_a_catalog_write_invalidates(tmp_path: Path) -> None:
    known, catalog, folder = _known(tmp_path)
    first = known.usable(LORA)
    with catalog.store.transaction():
        catalog.store.put([_on_disk(folder, "c")])
    second = known.usable(LORA)
    assert second is not first and sorted(r.name for r in second) == ["a", "b", "c"]
    with catalog.store.transaction():
        catalog.store.delete([str(folder / "a.safetensors")])
    assert sorted(r.name for r in known.usable(LORA)) == ["b", "c"]


def test_a_commit_from_another_connection_invalidates(tmp_path: Path) -> None:
    known, _, folder = _known(tmp_path)
    first = known.usable(LORA)
    other = Catalog(connect(tmp_path / "db.sqlite3"), builtins=False)  # e.g. `ml-diffusion scan` elsewhere
    with other.store.transaction():
        other.store.put([_on_disk(folder, "d")])
    other.store.conn.close()
    second = known.usable(LORA)
    assert second is not first and "d" in {r.name for r in second}


def test_a_deleted_file_is_no_candidate_without_a_rescan(tmp_path: Path) -> None:
    known, _, folder = _known(tmp_path)
    first = known.usable(LORA)
    (folder / "a.safetensors").unlink()
    second = known.usable(LORA)
    assert [r.name for r in second] == ["b"] and second is not first
    assert known.usable(LORA) is second
