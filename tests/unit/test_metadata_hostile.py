"""Metadata of hostile images: huge dimensions, text after the pixels, oversized chunks, FIFOs."""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from ml_lib.diffusion.errors import MetadataError
from ml_lib.diffusion.output.metadata import read_metadata

from .test_metadata import INFOTEXT, PLAN, encoded

INFO = "a castle\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 20000x9000"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def big_png(width: int = 20000, height: int = 9000, *, before: bytes = b"", after: bytes = b"") -> bytes:
    """A PNG whose header says ``width`` x ``height`` (RGB) but whose data is a few bytes: small on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (3 * width + 1))  # one row; a decoder would want them all
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + before
        + _chunk(b"IDAT", idat)
        + after
        + _chunk(b"IEND", b"")
    )


def text_chunk(key: str, value: str) -> bytes:
    return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_a_180_megapixel_png_gives_its_text_without_decoding(tmp_path: Path, no_decoding: None) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(big_png(before=text_chunk("parameters", INFO)))
    assert 2 * (Image.MAX_IMAGE_PIXELS or 0) < 20000 * 9000  # above Pillow's bomb error
    meta = read_metadata(path)
    assert (meta.format, meta.width, meta.height) == ("PNG", 20000, 9000)
    assert meta.parsed is not None and meta.parsed.seed == 5 and meta.parsed.width == 20000


def test_text_after_the_image_data_is_read_without_decoding(no_decoding: None) -> None:
    plan = b"ml_diffusion_plan\0\1\0\0\0" + zlib.compress(PLAN.to_json().encode())  # compressed iTXt
    data = big_png(64, 64, after=text_chunk("parameters", INFO) + _chunk(b"iTXt", plan))
    meta = read_metadata(io.BytesIO(data))
    assert meta.infotext == INFO and meta.plan == PLAN


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_our_own_images_are_read_without_decoding(fmt: str, no_decoding: None) -> None:
    meta = read_metadata(io.BytesIO(encoded(fmt)))
    assert (meta.width, meta.height) == (64, 48)
    assert meta.infotext == INFOTEXT and meta.plan == PLAN


def test_a_jpeg_whose_header_says_20000x9000_gives_its_text(no_decoding: None) -> None:
    data = bytearray(encoded("jpeg"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 9000, 20000)  # height, width
    meta = read_metadata(io.BytesIO(bytes(data)))
    assert (meta.width, meta.height) == (20000, 9000) and meta.infotext == INFOTEXT


def test_a_text_chunk_over_one_mib_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    huge = text_chunk("parameters", "x" * ((1 << 20) + 1))
    with caplog.at_level(logging.WARNING):
        meta = read_metadata(io.BytesIO(big_png(8, 8, before=huge)))
    assert meta.infotext is None
    assert any("more than 1 MiB" in r.getMessage() for r in caplog.records)


def test_a_one_mib_chunk_is_still_read() -> None:
    text = "p " * ((1 << 19) - 100) + "\nSteps: 3, Seed: 4, Size: 8x8"
    meta = read_metadata(io.BytesIO(big_png(8, 8, before=text_chunk("parameters", text))))
    assert meta.parsed is not None and meta.parsed.steps == 3


def test_a_compressed_chunk_that_inflates_past_one_mib_is_not_inflated() -> None:
    bomb = _chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"a" * (50 << 20), 9))
    meta = read_metadata(io.BytesIO(big_png(8, 8, before=bomb)))
    assert meta.infotext is None


def test_a_chunk_running_past_the_end_is_truncated() -> None:
    data = big_png(8, 8, before=text_chunk("parameters", INFO))
    with pytest.raises(MetadataError, match="truncated"):
        read_metadata(io.BytesIO(data[:60]))


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    result: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(result, fifo), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("read_metadata blocked on a FIFO")
    assert isinstance(result[0], MetadataError) and "not a regular file" in str(result[0])


def _capture(result: list[BaseException], path: Path) -> None:
    try:
        read_metadata(path)
    except MetadataError as exc:
        result.append(exc)
