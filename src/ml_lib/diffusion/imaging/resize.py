"""A1111's three resize modes for init, mask and control images (``modules/images.py: resize_image``).

- ``just_resize``: stretch to width x height (aspect not kept).
- ``crop_and_resize``: scale to cover the target, keeping the aspect, and cut the overflow equally on
  both sides (the centre is kept).
- ``resize_and_fill``: scale to fit inside the target, keeping the aspect, centred; the empty bands are
  filled by stretching the image's edge row (top/bottom) or edge column (left/right) across them.

All resampling is LANCZOS (A1111 without an upscaler set); the mode of the image is kept ("L" masks stay
"L"). Sizes and offsets use A1111's integer arithmetic. Two deliberate differences: the edge bands
repeat the exact edge pixels (A1111 asks Pillow for a zero-size box, which only approximates them), and
the far band covers every remaining row/column (A1111 leaves a 1-pixel black line when the leftover is
odd).
"""

from __future__ import annotations

import logging
from enum import Enum

from PIL import Image

from ..errors import RequestError

__all__ = ["ResizeMode", "resize_image"]

logger = logging.getLogger(__name__)

_LANCZOS = Image.Resampling.LANCZOS


class ResizeMode(str, Enum):
    """How an image of another aspect is fitted to the generation size (A1111 names and order)."""

    JUST_RESIZE = "just_resize"
    CROP_AND_RESIZE = "crop_and_resize"
    RESIZE_AND_FILL = "resize_and_fill"

    @property
    def a1111_index(self) -> int:
        """A1111's ``resize_mode`` number (0, 1, 2)."""
        return list(ResizeMode).index(self)

    @property
    def label(self) -> str:
        """A1111's UI label, e.g. "Crop and resize"."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def parse(cls, value: ResizeMode | str | int) -> ResizeMode:
        """A mode from its value ("crop_and_resize"), A1111 label ("Crop and resize") or index (1)."""
        if isinstance(value, ResizeMode):
            return value
        modes = list(cls)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(modes):
            return modes[value]
        if isinstance(value, str):
            key = value.strip().lower().replace(" ", "_").replace("-", "_")
            for mode in modes:
                if mode.value == key:
                    return mode
        known = ", ".join(f"{m.value} ({m.a1111_index})" for m in modes)
        raise RequestError(f"Unknown resize mode {value!r}; use one of {known}.")


def resize_image(
    image: Image.Image, width: int, height: int, mode: ResizeMode | str | int = ResizeMode.JUST_RESIZE
) -> Image.Image:
    """``image`` fitted to ``width`` x ``height`` with ``mode`` (see the module rules)."""
    mode = ResizeMode.parse(mode)
    if width <= 0 or height <= 0:
        raise RequestError(f"Cannot resize to {width}x{height}; width and height must be positive.")
    if mode is ResizeMode.JUST_RESIZE:
        return image.resize((width, height), _LANCZOS)

    ratio = width / height
    src_ratio = image.width / image.height
    if mode is ResizeMode.CROP_AND_RESIZE:
        src_w = width if ratio > src_ratio else image.width * height // image.height
        src_h = height if ratio <= src_ratio else image.height * width // image.width
    else:
        src_w = width if ratio < src_ratio else image.width * height // image.height
        src_h = height if ratio >= src_ratio else image.height * width // image.width
    src_w, src_h = max(src_w, 1), max(src_h, 1)

    resized = image.resize((src_w, src_h), _LANCZOS)
    left, top = width // 2 - src_w // 2, height // 2 - src_h // 2
    canvas = Image.new(image.mode, (width, height))
    canvas.paste(resized, (left, top))
    if mode is ResizeMode.RESIZE_AND_FILL:
        _fill_bands(canvas, resized, left, top)
    return canvas


def _fill_bands(canvas: Image.Image, resized: Image.Image, left: int, top: int) -> None:
    """Stretch the edge rows/columns of ``resized`` over the empty bands around it in ``canvas``."""
    width, height = canvas.size
    nearest = Image.Resampling.NEAREST
    below = height - (top + resized.height)
    if top > 0:
        row = resized.crop((0, 0, resized.width, 1)).resize((resized.width, top), nearest)
        canvas.paste(row, (left, 0))
    if below > 0:
        row = resized.crop((0, resized.height - 1, resized.width, resized.height))
        canvas.paste(row.resize((resized.width, below), nearest), (left, top + resized.height))
    right = width - (left + resized.width)
    if left > 0:
        col = resized.crop((0, 0, 1, resized.height)).resize((left, resized.height), nearest)
        canvas.paste(col, (0, top))
    if right > 0:
        col = resized.crop((resized.width - 1, 0, resized.width, resized.height))
        canvas.paste(col.resize((right, resized.height), nearest), (left + resized.width, top))
