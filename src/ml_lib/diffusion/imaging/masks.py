"""Inpainting mask operations, following A1111 (``processing.py`` and ``modules/masking.py``).

Masks are "L" images, white = repaint. The flow for "inpaint only masked" is::

    box = expand_to_aspect(crop_region(mask, padding), width, height, image.size)
    crop = crop_to_box(image, box, width, height)          # what the model sees
    result = paste_crop(image, generated, box, mask)       # back into the full picture

and for "whole picture" simply ``composite(image, generated, mask)``. An all-black mask (nothing to
repaint) raises :class:`InputImageError` in every function that needs a painted area.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import InputImageError, RequestError
from ._filters import gaussian_blur
from .resize import ResizeMode, resize_image

__all__ = [
    "Box",
    "blur_mask",
    "composite",
    "crop_region",
    "crop_to_box",
    "expand_to_aspect",
    "fill_masked",
    "paste_crop",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Box:
    """A pixel rectangle: ``left``/``top`` included, ``right``/``bottom`` excluded (PIL's convention)."""

    left: int
    top: int
    right: int
    bottom: int

    def __post_init__(self) -> None:
        if self.left < 0 or self.top < 0 or self.right <= self.left or self.bottom <= self.top:
            raise RequestError(f"Invalid box {self.pil_box}: need 0 <= left < right and 0 <= top < bottom.")

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def pil_box(self) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` for ``Image.crop``."""
        return (self.left, self.top, self.right, self.bottom)


def _as_l(mask: Image.Image) -> Image.Image:
    return mask if mask.mode == "L" else mask.convert("L")


def _require_painted(mask: Image.Image) -> tuple[int, int, int, int]:
    bbox = mask.getbbox()
    if bbox is None:
        raise InputImageError(
            "The mask is all black, so there is nothing to repaint; paint the area to change in white."
        )
    return bbox


def blur_mask(mask: Image.Image, radius: float, radius_y: float | None = None) -> Image.Image:
    """A1111's mask blur: Gaussian with sigma ``radius`` (x) and ``radius_y`` (y, default the same).

    As A1111 (``cv2.GaussianBlur`` with kernel size ``2 * int(2.5 * sigma + 0.5) + 1`` per axis, mirrored
    borders). 0 = no blur on that axis.
    """
    radius_y = radius if radius_y is None else radius_y
    if radius < 0 or radius_y < 0:
        raise RequestError(f"Mask blur must be >= 0, got {radius} x {radius_y}.")
    mask = _as_l(mask)
    if radius == 0 and radius_y == 0:
        return mask.copy()
    blurred = gaussian_blur(np.asarray(mask), radius, radius_y)
    return Image.fromarray(np.clip(np.rint(blurred), 0, 255).astype(np.uint8))


def crop_region(mask: Image.Image, padding: int = 0) -> Box:
    """The smallest box holding every non-black mask pixel, grown by ``padding`` and clipped to the mask.

    A1111's ``masking.get_crop_region``.
    """
    if padding < 0:
        raise RequestError(f"Masked-area padding must be >= 0, got {padding}.")
    mask = _as_l(mask)
    left, top, right, bottom = _require_painted(mask)
    return Box(
        max(left - padding, 0),
        max(top - padding, 0),
        min(right + padding, mask.width),
        min(bottom + padding, mask.height),
    )


def expand_to_aspect(box: Box, width: int, height: int, image_size: tuple[int, int]) -> Box:
    """Grow ``box`` to the aspect of ``width`` x ``height``, staying inside ``image_size`` = (w, h).

    A1111's ``masking.expand_crop_region``: the short side grows equally on both sides and the box is
    shifted back inside the image. The aspect is matched to within a pixel (integer rounding); when the
    image is too small in that direction the box spans the whole side and the aspect is not reached
    (the crop is then fitted with resize_and_fill by :func:`crop_to_box`).
    """
    if width <= 0 or height <= 0:
        raise RequestError(f"Processing size must be positive, got {width}x{height}.")
    image_w, image_h = image_size
    if box.right > image_w or box.bottom > image_h:
        raise RequestError(f"Box {box.pil_box} does not fit in an image of {image_w}x{image_h}.")
    x1, y1, x2, y2 = box.pil_box
    target = width / height
    if box.width / box.height > target:
        y1, y2 = _grow(y1, y2, int(box.width / target - box.height), image_h)
    else:
        x1, x2 = _grow(x1, x2, int(box.height * target - box.width), image_w)
    return Box(x1, y1, x2, y2)


def _grow(lo: int, hi: int, extra: int, limit: int) -> tuple[int, int]:
    """Add ``extra`` pixels around ``lo..hi`` (half each side), shifted back into ``0..limit``."""
    lo -= extra // 2
    hi += extra - extra // 2
    if hi > limit:
        lo -= hi - limit
        hi = limit
    if lo < 0:
        hi -= lo
        lo = 0
    return lo, min(hi, limit)


def crop_to_box(image: Image.Image, box: Box, width: int, height: int) -> Image.Image:
    """The part of ``image`` (or of a mask) under ``box``, fitted to ``width`` x ``height`` as A1111 does
    for "only masked" (resize_and_fill)."""
    return resize_image(image.crop(box.pil_box), width, height, ResizeMode.RESIZE_AND_FILL)


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image) -> Image.Image:
    """``generated`` where the mask is white, ``original`` exactly where it is black, blended between.

    A1111's overlay: ``out = original * (1 - m) + generated * m`` with ``m = mask / 255``, rounded to
    the nearest value; pixels under a black mask are bit-identical to ``original``. Returns RGB.
    """
    mask = _as_l(mask)
    if not original.size == generated.size == mask.size:
        raise InputImageError(
            f"Cannot composite: original {original.width}x{original.height}, generated "
            f"{generated.width}x{generated.height} and mask {mask.width}x{mask.height} must be the same size."
        )
    _require_painted(mask)
    base = np.asarray(original.convert("RGB"), dtype=np.uint32)
    new = np.asarray(generated.convert("RGB"), dtype=np.uint32)
    m = np.asarray(mask, dtype=np.uint32)[:, :, None]
    out = (base * (255 - m) + new * m + 127) // 255
    return Image.fromarray(out.astype(np.uint8))


def paste_crop(
    original: Image.Image, generated_crop: Image.Image, box: Box, mask: Image.Image
) -> Image.Image:
    """Put an "only masked" result back: ``generated_crop`` is scaled to ``box`` (crop_and_resize, as
    A1111), placed over ``original`` and composited through the full-size ``mask``."""
    if box.right > original.width or box.bottom > original.height:
        raise RequestError(f"Box {box.pil_box} does not fit in the {original.width}x{original.height} image.")
    placed = original.convert("RGB")
    patch = resize_image(generated_crop.convert("RGB"), box.width, box.height, ResizeMode.CROP_AND_RESIZE)
    placed.paste(patch, (box.left, box.top))
    return composite(original, placed, mask)


#: Blur radii and repeats of A1111's ``masking.fill`` (coarse to fine).
_FILL_PASSES = ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1))


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill" masked content (``modules/masking.py: fill``): the area under the mask is painted
    with the surrounding colours, spread by ever finer Gaussian blurs of the unmasked pixels. Returns RGB."""
    from PIL import ImageFilter, ImageOps

    mask = _as_l(mask)
    if image.size != mask.size:
        raise InputImageError(
            f"Cannot fill: the image is {image.width}x{image.height}, the mask {mask.width}x{mask.height}."
        )
    out = Image.new("RGBA", image.size)
    kept = Image.new("RGBa", image.size)
    kept.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask))
    for radius, repeats in _FILL_PASSES:
        blurred = kept.filter(ImageFilter.GaussianBlur(radius)).convert("RGBA")
        for _ in range(repeats):
            out.alpha_composite(blurred)
    return out.convert("RGB")
