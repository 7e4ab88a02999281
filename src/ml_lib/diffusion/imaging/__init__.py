"""Input images for img2img, inpainting, ControlNet and IP-Adapter: a pure library (Pillow + numpy).

- :mod:`.intake`: ``load_image`` / ``load_mask`` from paths, bytes, PIL images or arrays, with size
  limits, damage checks, EXIF orientation and documented mode rules.
- :mod:`.store`: ``InputStore``, content-addressed PNGs so a plan names its inputs exactly.
- :mod:`.resize`: A1111's resize modes (just resize, crop and resize, resize and fill).
- :mod:`.masks`: mask blur, "only masked" crop regions, compositing the result back.
- :mod:`.preprocess`: ControlNet preprocessors by name and recommended conditioning scales.

Nothing here imports torch; the model-based annotators call the engine (torch, ``controlnet_aux``) only
when run.
"""

from __future__ import annotations

from .intake import DEFAULT_MAX_PIXELS, WHITE, ImageSource, load_image, load_mask
from .masks import Box, blur_mask, composite, crop_region, crop_to_box, expand_to_aspect, paste_crop
from .preprocess import (
    PREPROCESSORS,
    Preprocessor,
    canny,
    control_types,
    inpaint,
    preprocess,
    recommended_scale,
    scribble,
    softedge,
    tile,
)
from .resize import ResizeMode, resize_image
from .store import InputStore, StoredImage, pixel_sha256

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "PREPROCESSORS",
    "WHITE",
    "Box",
    "ImageSource",
    "InputStore",
    "Preprocessor",
    "ResizeMode",
    "StoredImage",
    "blur_mask",
    "canny",
    "composite",
    "control_types",
    "crop_region",
    "crop_to_box",
    "expand_to_aspect",
    "inpaint",
    "load_image",
    "load_mask",
    "paste_crop",
    "pixel_sha256",
    "preprocess",
    "recommended_scale",
    "resize_image",
    "scribble",
    "softedge",
    "tile",
]
