"""Strict decoding shared by intake and the input store: size limit first, then a full, checked load."""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from typing import BinaryIO

from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import ConfigError, InputImageError

__all__ = ["DEFAULT_MAX_PIXELS", "check_pixels", "decode_bytes", "decode_path", "ensure_loaded"]

logger = logging.getLogger(__name__)

#: Pillow's default decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``): 1024**3 // 4 // 3.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

# What Pillow raises on a damaged file while reading headers or decoding data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


def check_pixels(width: int, height: int, max_pixels: int, label: str) -> None:
    """Refuse empty images and images over ``max_pixels`` before any pixel data is decoded."""
    if width <= 0 or height <= 0:
        raise InputImageError(f"{label} is empty ({width}x{height} pixels); give a real image.")
    if width * height > max_pixels:
        raise InputImageError(
            f"{label} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "pixels (a decompression-bomb guard). Downscale the image, or raise max_pixels if it is trusted."
        )


def _require_strict_pillow() -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ConfigError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process (set by other code), so a truncated "
            "input image would silently load as a partial image. Set it back to False before loading inputs."
        )


def ensure_loaded(image: Image.Image, label: str) -> None:
    """Decode every pixel of ``image`` now; a truncated or corrupt file raises InputImageError."""
    _require_strict_pillow()
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise InputImageError(f"{label} was refused by Pillow's decompression-bomb guard: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise InputImageError(
            f"{label} is truncated or corrupt ({exc}); re-export or re-download the image."
        ) from exc


def _decode(fp: BinaryIO, label: str, max_pixels: int) -> Image.Image:
    _require_strict_pillow()
    try:
        image = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise InputImageError(
            f"{label} was refused by Pillow's decompression-bomb guard ({exc}); downscale the image."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputImageError(
            f"{label} is not an image in a format Pillow can read; use PNG, JPEG or WebP."
        ) from exc
    except _DECODE_ERRORS as exc:
        raise InputImageError(f"{label} has a corrupt header ({exc}); re-export the image.") from exc
    with image:
        check_pixels(image.width, image.height, max_pixels, label)
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            logger.info("%s has %d frames; using the first", label, frames)
        ensure_loaded(image, label)
        # A file-backed image keeps its file open; a copy (pixels, palette, info) is independent of it.
        return image.copy()


def decode_bytes(data: bytes | bytearray | memoryview, label: str, max_pixels: int) -> Image.Image:
    """Decode an encoded image (PNG, JPEG …) held in memory."""
    return _decode(io.BytesIO(bytes(data)), label, max_pixels)


def decode_path(path: str | os.PathLike[str], max_pixels: int) -> Image.Image:
    """Decode the image file at ``path``; a missing or unreadable file raises InputImageError."""
    label = f"The image file {os.fspath(path)!r}"
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below after the full decode
    except FileNotFoundError as exc:
        raise InputImageError(f"{label} does not exist; check the path.") from exc
    except IsADirectoryError as exc:
        raise InputImageError(f"{label} is a folder, not an image file.") from exc
    except OSError as exc:
        raise InputImageError(
            f"{label} cannot be read ({exc.strerror or exc}); check its permissions."
        ) from exc
    with fh:
        return _decode(fh, label, max_pixels)
