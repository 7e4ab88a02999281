"""The output room: A1111 infotext, image metadata, file names and atomic saving (pure Python + Pillow)."""

from __future__ import annotations

from .infotext import Infotext, format_infotext, parse_infotext
from .metadata import ImageMetadata, SaveOptions, image_save_kwargs, read_metadata
from .naming import DEFAULT_TEMPLATE, NameContext, next_counter, render_stem, safe_stem
from .writer import save_image

__all__ = [
    "DEFAULT_TEMPLATE",
    "ImageMetadata",
    "Infotext",
    "NameContext",
    "SaveOptions",
    "format_infotext",
    "image_save_kwargs",
    "next_counter",
    "parse_infotext",
    "read_metadata",
    "render_stem",
    "safe_stem",
    "save_image",
]
