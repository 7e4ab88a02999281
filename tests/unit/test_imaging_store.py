"""Content-addressed input store: dedup, exact round trip, atomic writes, changed/missing files caught."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_lib.diffusion.errors import DiskFullError, InputImageChangedError, InputImageError
from ml_lib.diffusion.imaging.store import InputStore, StoredImage, pixel_sha256


def noise(seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (24, 32, 3) if mode == "RGB" else (24, 32)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_put_dedups_identical_pixels_and_gets_them_back(tmp_path: Path) -> None:
    store = InputStore(tmp_path / "inputs")
    first = store.put(noise(1))
    second = store.put(noise(1))  # another object, same pixels
    assert first == second
    assert first.path == f"{first.sha256}.png"
    assert (first.width, first.height) == (32, 24)
    assert files(tmp_path / "inputs") == [first.path]  # one file, no temp file left
    back = store.get(first)
    assert back.mode == "RGB"
    assert np.array_equal(np.asarray(back), np.asarray(noise(1)))


def test_different_images_and_modes_get_different_hashes(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    a, b = store.put(noise(1)), store.put(noise(2))
    grey = store.put(noise(1, "L"))
    assert len({a.sha256, b.sha256, grey.sha256}) == 3
    assert store.get(grey).mode == "L"
    assert len(files(tmp_path)) == 3


def test_hash_ignores_the_png_encoding(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    stored = store.put(noise(3))
    noise(3).save(store.path_of(stored), compress_level=0)  # re-encoded, same pixels
    assert pixel_sha256(store.get(stored)) == stored.sha256


def test_changed_file_is_detected(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    stored = store.put(noise(4))
    edited = noise(4)
    edited.putpixel((5, 5), (0, 0, 0) if edited.getpixel((5, 5)) != (0, 0, 0) else (1, 1, 1))
    edited.save(store.path_of(stored))
    with pytest.raises(InputImageChangedError, match="has changed"):
        store.get(stored)


def test_missing_and_damaged_files_are_detected(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    stored = store.put(noise(5))
    path = store.path_of(stored)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputImageChangedError, match="can no longer be read"):
        store.get(stored)
    path.unlink()
    with pytest.raises(InputImageChangedError, match="missing"):
        store.get(stored)


def test_put_rewrites_a_damaged_copy(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    stored = store.put(noise(6))
    store.path_of(stored).write_bytes(b"garbage")
    assert store.put(noise(6)) == stored
    assert np.array_equal(np.asarray(store.get(stored)), np.asarray(noise(6)))


def test_get_by_path_needs_the_hash(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    stored = store.put(noise(7))
    absolute = store.path_of(stored)
    assert store.get(absolute, stored.sha256).size == (32, 24)
    assert store.get(stored.path, stored.sha256).size == (32, 24)
    with pytest.raises(InputImageError, match="No sha256"):
        store.get(stored.path)
    with pytest.raises(InputImageError, match="not a sha256"):
        store.get(stored.path, "abc")
    with pytest.raises(InputImageError, match="Two different hashes"):
        store.get(stored, "0" * 64)
    with pytest.raises(InputImageChangedError):
        store.get(StoredImage(stored.path, "0" * 64, 32, 24))


def test_modes_a_png_cannot_hold_exactly_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputImageError, match="CMYK"):
        InputStore(tmp_path).put(Image.new("CMYK", (2, 2)))


def test_sixteen_bit_round_trip(tmp_path: Path) -> None:
    store = InputStore(tmp_path)
    wide = Image.fromarray(np.array([[0, 1, 65535]], dtype=np.uint16))
    back = store.get(store.put(wide))
    assert back.mode == "I;16"
    assert np.asarray(back).tolist() == [[0, 1, 65535]]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    store = InputStore(tmp_path)
    with pytest.raises(DiskFullError):
        store.put(noise(8))
    assert files(tmp_path) == []
