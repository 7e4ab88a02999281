"""Init images from hostile paths: FIFOs refused without blocking, oversized images refused before
any pixel is decoded or stored."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PIL import ImageFile

from ml_lib.diffusion.errors import InputImageError
from ml_lib.diffusion.imaging.intake import load_image, load_mask
from ml_lib.diffusion.imaging.store import InputStore
from ml_lib.diffusion.resolve.inputs import InputStaging
from ml_lib.diffusion.settings import Limits

from .test_metadata_hostile import big_png


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_a_9000_square_init_image_is_refused_before_decoding(tmp_path: Path, no_decoding: None) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(big_png(9000, 9000))
    assert 9000 * 9000 < 89_478_485  # under Pillow's bomb limit: only our limit stops it
    with pytest.raises(InputImageError, match=f"over the limit of {Limits().max_pixels:,}"):
        load_image(path)
    with pytest.raises(InputImageError, match="over the limit"):
        load_mask(path, (64, 64))


def test_a_9000_square_init_image_is_not_stored(tmp_path: Path, no_decoding: None) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(big_png(9000, 9000))
    root = tmp_path / "inputs"
    with pytest.raises(InputImageError, match="over the limit"):
        InputStaging(InputStore(root)).image(str(path))
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_an_explicit_max_pixels_still_wins(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(big_png(64, 32))
    with pytest.raises(InputImageError, match="over the limit of 100"):
        load_image(path, max_pixels=100)


def _outcome(path: Path) -> list[BaseException]:
    result: list[BaseException] = []

    def run() -> None:
        try:
            load_image(path)
        except InputImageError as exc:
            result.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():
        with open(path, "wb"):  # unblock the reader before failing
            pass
        pytest.fail("load_image blocked on a FIFO")
    return result


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_init_image_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "init.png"
    os.mkfifo(fifo)
    [error] = _outcome(fifo)
    assert "not a regular file" in str(error)


def test_a_device_is_refused(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(InputImageError, match="not a regular file"):
        load_image(link)


def test_a_folder_still_says_folder(tmp_path: Path) -> None:
    with pytest.raises(InputImageError, match="folder"):
        load_image(tmp_path)
