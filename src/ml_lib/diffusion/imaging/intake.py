"""Input images and masks: from a path, bytes, a PIL image or a numpy array to checked RGB / L pixels.

Rules (the same for every kind of source):

- **Size**: more than ``max_pixels`` pixels (default: ``settings.Limits().max_pixels``, 4096x4096; pass
  the configured ``settings.limits.max_pixels``) is refused before any pixel is decoded, for files and
  bytes as for in-memory images and arrays, so it is never stored. A higher ``max_pixels`` cannot lift
  Pillow's own hard stop at twice ``PIL.Image.MAX_IMAGE_PIXELS``.
- **Files**: only regular files are opened (a FIFO would block the open, a device never end); anything
  else is refused first.
- **Damage**: a truncated or corrupt file raises :class:`InputImageError`; a partial image is never
  returned (``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False: if other code set it, ConfigError).
- **Orientation**: the EXIF orientation is applied (``ImageOps.exif_transpose``). Multi-frame files
  (GIF, APNG, TIFF) give their first frame.
- **Modes** (``load_image`` → RGB):
  transparency (RGBA, LA, PA, P or L/RGB with a transparent colour) is composited on white, as A1111
  flattens img2img inputs (``background=`` changes the colour); ``1`` → black/white; ``L``, ``P``,
  ``CMYK``, ``YCbCr`` → Pillow's conversion (CMYK without its ICC profile); ``I;16`` and ``I`` hold
  0..65535 and are scaled by 255/65535 (``I`` outside that range is refused); ``F`` must hold 0..1 and
  is scaled by 255.
- **Arrays**: HxW, HxWx1 (grey), HxWx3 (RGB), HxWx4 (RGBA, flattened as above); dtype uint8 (0..255),
  uint16 (0..65535), bool, or float in 0..1 (NaN or values outside 0..1 are refused, not clipped).
- **Masks** (``load_mask`` → L, white = repaint, as A1111): the luminance of the mask; with
  transparency, transparent pixels count as black (kept), except an *alpha-only* mask — colour channels
  uniform, alpha varying — whose alpha is the mask (opaque = repaint). ComfyUI/OpenAI-style masks, where
  transparent means repaint, must be inverted first. Grey levels are kept (soft masks). A mask of
  another size than the image is stretched to it with nearest-neighbour sampling when ``resize`` is
  True, else refused naming both sizes. An all-black mask (nothing to repaint) is refused.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import TypeAlias

import numpy as np
from PIL import Image, ImageOps

from ..errors import InputImageError
from ..settings import Limits
from ._decode import DEFAULT_MAX_PIXELS, check_pixels, decode_bytes, decode_path, ensure_loaded

__all__ = ["DEFAULT_MAX_PIXELS", "WHITE", "ImageSource", "load_image", "load_mask"]

logger = logging.getLogger(__name__)

#: Anything :func:`load_image` and :func:`load_mask` accept.
ImageSource: TypeAlias = str | os.PathLike[str] | bytes | Image.Image | np.ndarray

#: Background that transparency is flattened on (A1111's default img2img background colour).
WHITE = (255, 255, 255)

_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def load_image(
    src: ImageSource,
    *,
    max_pixels: int | None = None,
    background: tuple[int, int, int] = WHITE,
) -> Image.Image:
    """A fully loaded RGB copy of ``src`` (see the module rules); raises InputImageError.

    ``max_pixels``: None for the default limit (``Limits().max_pixels``).
    """
    raw = _decode(src, _limit(max_pixels))
    return _to_rgb(raw, background)


def load_mask(
    src: ImageSource,
    size: tuple[int, int],
    *,
    resize: bool = True,
    max_pixels: int | None = None,
) -> Image.Image:
    """An "L" inpaint mask (white = repaint) of ``size`` = (width, height) of its image; see the rules."""
    width, height = size
    mask = _mask_channel(_decode(src, _limit(max_pixels)))
    if mask.size != (width, height):
        if not resize:
            raise InputImageError(
                f"The mask is {mask.width}x{mask.height} but the image is {width}x{height}; give a mask of "
                "the image's size, or allow resizing (the mask is then stretched, nearest-neighbour)."
            )
        logger.info("Resizing mask %dx%d to %dx%d (nearest)", mask.width, mask.height, width, height)
        mask = mask.resize((width, height), Image.Resampling.NEAREST)
    if mask.getbbox() is None:
        raise InputImageError(
            "The mask is all black, so there is nothing to repaint; paint the area to change in white."
        )
    return mask


def _limit(max_pixels: int | None) -> int:
    return Limits().max_pixels if max_pixels is None else max_pixels


def _check_regular(path: str | os.PathLike[str], label: str) -> None:
    """Refuse a FIFO, socket or device before it is opened (a folder is left to the decoder's message)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the decoder opens it and words the error
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputImageError(
            f"{label} is not a regular file (a FIFO, socket or device); give an image file."
        )


def _decode(src: ImageSource, max_pixels: int) -> Image.Image:
    """Any source → a loaded, upright PIL image independent of the source (mode unchanged)."""
    if isinstance(src, Image.Image):
        label = "The input image"
        check_pixels(src.width, src.height, max_pixels, label)
        ensure_loaded(src, label)
        image = src
    elif isinstance(src, np.ndarray):
        return _from_array(src, max_pixels)
    elif isinstance(src, bytes | bytearray | memoryview):
        label = "The image bytes"
        image = decode_bytes(src, label, max_pixels)
    elif isinstance(src, str | os.PathLike):
        label = f"The image file {os.fspath(src)!r}"
        _check_regular(src, label)
        image = decode_path(src, max_pixels)
    else:
        raise InputImageError(
            f"Cannot read an image from a {type(src).__name__}; give a path, bytes, a PIL image or an array."
        )
    try:
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError) as exc:
        raise InputImageError(
            f"{label} has malformed EXIF data ({exc}); re-save it without EXIF metadata."
        ) from exc
    return upright if upright is not None else image.copy()


def _from_array(arr: np.ndarray, max_pixels: int) -> Image.Image:
    shape = arr.shape
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and shape[2] not in (1, 3, 4)):
        raise InputImageError(
            f"An image array must be HxW, HxWx1, HxWx3 or HxWx4; got shape {shape}. "
            "Channels go last (HWC), not first (CHW)."
        )
    check_pixels(shape[1], shape[0], max_pixels, "The image array")
    if arr.ndim == 3 and shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(_array_to_uint8(arr)))


def _array_to_uint8(arr: np.ndarray) -> np.ndarray:
    kind = arr.dtype
    if kind == np.uint8:
        return arr
    if kind == np.bool_:
        return arr.astype(np.uint8) * 255
    if kind == np.uint16:
        return _scale_16bit(arr)
    if np.issubdtype(kind, np.floating):
        return _scale_unit_float(arr, "The image array")
    raise InputImageError(
        f"Unsupported image array dtype {kind}; use uint8 (0..255), uint16, bool, or float in 0..1."
    )


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 → 0..255, rounded to nearest."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _scale_unit_float(values: np.ndarray, label: str) -> np.ndarray:
    """0..1 float → 0..255, rounded; NaN, infinities and values outside 0..1 are refused."""
    if not np.all(np.isfinite(values)):
        raise InputImageError(f"{label} contains NaN or infinite values; give finite values in 0..1.")
    low, high = float(values.min()), float(values.max())
    if low < -1e-6 or high > 1.0 + 1e-6:
        raise InputImageError(
            f"{label} holds floats in {low:g}..{high:g}; float pixels must be in 0..1 "
            "(divide 0..255 data by 255, or give uint8)."
        )
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _wide_to_l(image: Image.Image) -> Image.Image:
    """I;16 / I / F single-channel images → 8-bit L (see the module rules)."""
    values = np.asarray(image)
    if image.mode == "F":
        return Image.fromarray(_scale_unit_float(values, f"The {image.mode} image"))
    if image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        raise InputImageError(
            f"The 32-bit integer image holds {values.min()}..{values.max()}, outside 0..65535; "
            "save it as 8- or 16-bit."
        )
    return Image.fromarray(_scale_16bit(values))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def _to_rgba_array(image: Image.Image) -> np.ndarray:
    if image.mode == "La":  # premultiplied: Pillow only converts it to LA
        image = image.convert("LA")
    try:
        return np.asarray(image.convert("RGBA"))
    except ValueError as exc:
        raise InputImageError(f"Cannot convert an image in mode {image.mode} to RGBA ({exc}).") from exc


def _to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if image.mode in _WIDE_MODES:
        return _wide_to_l(image).convert("RGB")
    if _has_alpha(image):
        rgba = _to_rgba_array(image).astype(np.uint32)
        alpha = rgba[:, :, 3:4]
        bg = np.asarray(background, dtype=np.uint32).reshape(1, 1, 3)
        flat = (rgba[:, :, :3] * alpha + bg * (255 - alpha) + 127) // 255
        return Image.fromarray(flat.astype(np.uint8))
    if image.mode == "RGB":
        return image
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise InputImageError(
            f"Images in mode {image.mode} are not supported ({exc}); save it as RGB (PNG or JPEG)."
        ) from exc


def _mask_channel(image: Image.Image) -> Image.Image:
    if image.mode in _WIDE_MODES:
        return _wide_to_l(image)
    if _has_alpha(image):
        rgba = _to_rgba_array(image)
        alpha = rgba[:, :, 3]
        colour = rgba[:, :, :3]
        if alpha.min() != alpha.max() and bool(np.all(colour == colour[0, 0])):
            return Image.fromarray(np.ascontiguousarray(alpha))  # alpha-only mask: opaque = repaint
        lum = np.asarray(Image.fromarray(np.ascontiguousarray(colour)).convert("L"), dtype=np.uint32)
        return Image.fromarray(((lum * alpha + 127) // 255).astype(np.uint8))
    if image.mode == "L":
        return image
    try:
        return image.convert("L")
    except ValueError as exc:
        raise InputImageError(
            f"Masks in mode {image.mode} are not supported ({exc}); use a grey PNG."
        ) from exc
