"""ControlNet preprocessors by name, and the recommended conditioning scale of each control type.

Built in (numpy, no weights): ``canny``, ``scribble``, ``softedge`` (see :mod:`.edges`), ``tile`` and
``inpaint``. They return an RGB PIL image, except ``inpaint``, which returns the float32 HxWx3 numpy
array the inpaint ControlNet takes (diffusers' ``make_inpaint_condition``: pixels in 0..1, masked
pixels set to -1); the engine turns it into a tensor.

Model-based annotators (``depth``, ``openpose``, ``lineart``, ``lineart_anime``, ``normal``, ``mlsd``,
``hed``, ``pidinet``) are run by the engine (:func:`ml_lib.diffusion.engine.annotators.annotate`, which
imports torch and the optional ``controlnet_aux`` only when called) with weights from a local folder
given as ``annotator_dir=`` (the files of lllyasviel/Annotators; the Hub is never asked). Whatever is
missing raises ``errors.AnnotatorUnavailableError`` naming it. Passing an already preprocessed control
image (no preprocessor) always works.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputImageError, RequestError
from .edges import canny, scribble, softedge
from .intake import ImageSource, load_image, load_mask

__all__ = [
    "PREPROCESSORS",
    "Preprocessor",
    "canny",
    "control_types",
    "inpaint",
    "preprocess",
    "recommended_scale",
    "scribble",
    "softedge",
    "tile",
]

logger = logging.getLogger(__name__)

ControlImage = Image.Image | np.ndarray


@dataclass(frozen=True, slots=True)
class Preprocessor:
    """A named preprocessor: the ControlNet type it feeds and whether it needs downloaded weights."""

    name: str
    control_type: str
    run: Callable[..., ControlImage]
    needs_weights: bool = False


def tile(image: Image.Image, *, down_sampling_rate: float = 1.0) -> Image.Image:
    """ControlNet tile's ``tile_resample``: shrink by ``down_sampling_rate`` (area average), then scale
    back to the input size (LANCZOS), which blurs detail away. 1.0 (A1111's default) keeps the image."""
    if down_sampling_rate < 1.0:
        raise RequestError(f"The tile down-sampling rate must be >= 1, got {down_sampling_rate}.")
    rgb = image.convert("RGB")
    if down_sampling_rate == 1.0:
        return rgb
    small = (max(1, int(rgb.width / down_sampling_rate)), max(1, int(rgb.height / down_sampling_rate)))
    return rgb.resize(small, Image.Resampling.BOX).resize(rgb.size, Image.Resampling.LANCZOS)


def inpaint(image: Image.Image, *, mask: ImageSource) -> np.ndarray:
    """The inpaint ControlNet condition: float32 HxWx3, RGB / 255, and -1 where ``mask`` > 50 % grey.

    The mask must have the image's size (white = repaint) and paint something.
    """
    if isinstance(mask, Image.Image):
        grey = mask if mask.mode == "L" else mask.convert("L")
        if grey.size != image.size:
            raise InputImageError(
                f"The inpaint mask is {grey.width}x{grey.height} but the control image is "
                f"{image.width}x{image.height}; give them the same size."
            )
        if grey.getbbox() is None:
            raise InputImageError("The inpaint mask is all black, so there is nothing to repaint.")
    else:
        grey = load_mask(mask, image.size, resize=False)
    condition = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    condition[np.asarray(grey, dtype=np.float32) / 255.0 > 0.5] = -1.0
    return condition


_REGISTRY: dict[str, Preprocessor] = {
    "canny": Preprocessor("canny", "canny", canny),
    "scribble": Preprocessor("scribble", "scribble", scribble),
    "softedge": Preprocessor("softedge", "softedge", softedge),
    "tile": Preprocessor("tile", "tile", tile),
    "inpaint": Preprocessor("inpaint", "inpaint", inpaint),
}

# model-based preprocessor name → the control type it feeds (detectors: engine/annotators.py)
_ANNOTATORS = {
    "depth": "depth",
    "openpose": "openpose",
    "lineart": "lineart",
    "lineart_anime": "lineart",
    "normal": "normal",
    "mlsd": "mlsd",
    "hed": "softedge",
    "pidinet": "softedge",
}


def _annotate(
    name: str,
    image: Image.Image,
    *,
    annotator_dir: str | os.PathLike[str] | None = None,
    **params: Any,
) -> Image.Image:
    """Run a model-based preprocessor through the engine, which imports torch and controlnet_aux."""
    from ..engine.annotators import annotate

    return annotate(name, image, None if annotator_dir is None else Path(annotator_dir), **params)


_REGISTRY.update(
    {
        name: Preprocessor(name, control_type, functools.partial(_annotate, name), needs_weights=True)
        for name, control_type in _ANNOTATORS.items()
    }
)

#: Every preprocessor by name (read-only).
PREPROCESSORS: Mapping[str, Preprocessor] = MappingProxyType(_REGISTRY)


def preprocess(name: str, image: ImageSource, **params: Any) -> ControlImage:
    """Run the preprocessor ``name`` on ``image`` (any source :func:`load_image` accepts).

    ``params`` go to the preprocessor (e.g. ``low=``/``high=`` for canny, ``mask=`` for inpaint,
    ``annotator_dir=`` for the model-based ones); an unknown name or parameter raises RequestError.
    """
    entry = PREPROCESSORS.get(name)
    if entry is None:
        raise RequestError(f"Unknown preprocessor {name!r}; known: {', '.join(sorted(PREPROCESSORS))}.")
    rgb = image if isinstance(image, Image.Image) and image.mode == "RGB" else load_image(image)
    try:
        inspect.signature(entry.run).bind(rgb, **params)
    except TypeError as exc:
        accepted = [
            p.name
            for p in list(inspect.signature(entry.run).parameters.values())[1:]
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        raise RequestError(
            f"Bad parameters for the {name!r} preprocessor ({exc}); it accepts: {', '.join(accepted) or 'none'}."
        ) from exc
    logger.debug("Preprocessing with %s %s", name, params)
    return entry.run(rgb, **params)


# Starting points used by A1111 users and the ControlNet 1.1 model cards; weaker for guides that
# should leave room (tile re-detailing, scribbles and soft edges that are only approximate).
_SCALES: Mapping[str, float] = MappingProxyType(
    {
        "canny": 1.0,
        "depth": 1.0,
        "inpaint": 1.0,
        "lineart": 1.0,
        "mlsd": 1.0,
        "normal": 1.0,
        "openpose": 1.0,
        "scribble": 0.9,
        "softedge": 0.9,
        "tile": 0.6,
    }
)


def control_types() -> tuple[str, ...]:
    """The ControlNet types we know a recommended scale for, sorted."""
    return tuple(sorted(_SCALES))


def recommended_scale(control_type: str) -> float:
    """The default ``controlnet_conditioning_scale`` for a control type (see ``control_types()``)."""
    try:
        return _SCALES[control_type]
    except KeyError:
        raise RequestError(
            f"Unknown control type {control_type!r}; known: {', '.join(control_types())}."
        ) from None
