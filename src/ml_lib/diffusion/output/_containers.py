"""PNG and WebP metadata read from the file's chunks alone: no pixel is decoded, no canvas allocated.

Pillow reads PNG text chunks that follow the image data only by decoding the image, and refuses to open
an image above its decompression-bomb limit before any text is read; neither matters for metadata.
Each text chunk is read up to :data:`MAX_TEXT_BYTES` (1 MiB, before and after decompression); a longer
one is skipped with a warning. A chunk running past the end of the file raises :class:`Truncated`.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["MAX_TEXT_BYTES", "PNG_SIGNATURE", "Container", "Truncated", "read_png", "read_webp"]

logger = logging.getLogger(__name__)

#: The most bytes read from one text chunk (and, for compressed chunks, inflated from it).
MAX_TEXT_BYTES = 1 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")


class Truncated(Exception):
    """The file ends inside a chunk, or before its last chunk (internal: metadata.py words the error)."""


@dataclass(slots=True)
class Container:
    """What a PNG or WebP file says about itself: format, size, text chunks, EXIF bytes."""

    format: str
    width: int = 0
    height: int = 0
    text: dict[str, str] = field(default_factory=dict)
    exif: bytes | None = None


def _read_exact(fp: BinaryIO, n: int) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise Truncated(f"the file ends {n - len(data)} bytes early")
    return data


def _skip(fp: BinaryIO, n: int) -> None:
    """Seek past ``n`` bytes, checking they exist (a seek past the end does not fail on its own)."""
    if n == 0:
        return
    fp.seek(n - 1, 1)
    _read_exact(fp, 1)


def _inflate(data: bytes) -> bytes | None:
    """Decompress at most MAX_TEXT_BYTES (None when there is more: a compression bomb is not inflated)."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_BYTES)
    return None if inflater.unconsumed_tail else out


def _png_text(kind: bytes, data: bytes) -> tuple[str, str] | None:
    key, sep, rest = data.partition(b"\0")
    if not sep:
        return None
    name = key.decode("latin-1")
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        body = _inflate(rest[1:])
        return None if body is None else (name, body.decode("latin-1"))
    compressed, rest = rest[:1] == b"\1", rest[2:]  # iTXt: flag, method, language\0, translated\0, text
    _lang, _, rest = rest.partition(b"\0")
    _translated, _, body = rest.partition(b"\0")
    inflated = _inflate(body) if compressed else body
    return None if inflated is None else (name, inflated.decode("utf-8", errors="replace"))


def read_png(fp: BinaryIO, name: str) -> Container:
    """Size from IHDR, every text chunk (later ones win, as in Pillow), EXIF from eXIf; stops at IEND."""
    if _read_exact(fp, 8) != PNG_SIGNATURE:
        raise ValueError("not a PNG signature")
    out = Container("PNG")
    while True:
        length, kind = struct.unpack(">I4s", _read_exact(fp, 8))
        if kind == b"IEND":
            return out
        if kind == b"IHDR":
            out.width, out.height = struct.unpack(">II", _read_exact(fp, length)[:8])
        elif kind in _PNG_TEXT or kind == b"eXIf":
            if length > MAX_TEXT_BYTES:
                logger.warning(
                    "%s: skipped a %s chunk of %d bytes (more than 1 MiB)", name, kind.decode(), length
                )
                _skip(fp, length)
            else:
                data = _read_exact(fp, length)
                if kind == b"eXIf":
                    out.exif = data
                elif (pair := _png_text(kind, data)) is not None:
                    out.text[pair[0]] = pair[1]
                else:
                    logger.warning("%s: skipped a %s chunk that inflates past 1 MiB", name, kind.decode())
        else:
            _skip(fp, length)
        _skip(fp, 4)  # CRC


def _webp_size(kind: bytes, data: bytes) -> tuple[int, int] | None:
    if kind == b"VP8X" and len(data) >= 10:
        return 1 + int.from_bytes(data[4:7], "little"), 1 + int.from_bytes(data[7:10], "little")
    if kind == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def read_webp(fp: BinaryIO, name: str) -> Container:
    """Size from the VP8X / VP8 / VP8L chunk and EXIF from the EXIF chunk, walking the RIFF chunks."""
    riff, size, webp = struct.unpack("<4sI4s", _read_exact(fp, 12))
    if riff != b"RIFF" or webp != b"WEBP":
        raise ValueError("not a WebP header")
    out = Container("WEBP")
    remaining = size - 4
    while remaining > 0:
        kind, length = struct.unpack("<4sI", _read_exact(fp, 8))
        padded = length + (length & 1)
        remaining -= 8 + padded
        if kind in (b"VP8X", b"VP8 ", b"VP8L"):
            head = _read_exact(fp, min(length, 10))
            _skip(fp, padded - len(head))
            if (found := _webp_size(kind, head)) is not None and not out.width:
                out.width, out.height = found
        elif kind == b"EXIF" and length <= MAX_TEXT_BYTES:
            out.exif = _read_exact(fp, length)
            _skip(fp, padded - length)
        else:
            if kind == b"EXIF":
                logger.warning("%s: skipped an EXIF chunk of %d bytes (more than 1 MiB)", name, length)
            _skip(fp, padded)
    return out
