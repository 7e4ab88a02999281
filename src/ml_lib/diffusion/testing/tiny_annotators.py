"""Seeded random weight files for controlnet_aux detectors, written under the names they load.

The networks are controlnet_aux's own classes at their real sizes (their shapes are fixed by the
detectors' ``from_pretrained``), so a folder written here loads exactly like the lllyasviel/Annotators
files and :func:`ml_lib.diffusion.engine.annotators.annotate` really runs them; only the weights are
random. Sizes on disk: pidinet 2.8 MB, mlsd 6 MB, lineart 2 x 17 MB, hed 59 MB.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..engine.annotators import ANNOTATORS, detector_class

__all__ = ["TINY_ANNOTATORS", "write_tiny_annotator"]


def _module(path: str) -> Any:
    return importlib.import_module(f"controlnet_aux.{path}")


def _pidinet() -> dict[str, Any]:
    net = _module("pidi.model").pidinet()
    return {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}


def _lineart() -> dict[str, Any]:
    return _module("lineart").Generator(3, 1, 3).state_dict()


def _mlsd() -> dict[str, Any]:
    return _module("mlsd.models.mbv2_mlsd_large").MobileV2_MLSD_Large().state_dict()


def _hed() -> dict[str, Any]:
    return _module("hed").ControlNetHED_Apache2().state_dict()


_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "pidinet": _pidinet,
    "lineart": _lineart,
    "mlsd": _mlsd,
    "hed": _hed,
}

#: The detectors this module can write weights for.
TINY_ANNOTATORS: tuple[str, ...] = tuple(_BUILDERS)


def write_tiny_annotator(name: str, folder: Path, *, seed: int = 0) -> tuple[Path, ...]:
    """Write seeded random weights for the preprocessor ``name`` into ``folder``; return the files.

    Every file the detector loads gets its own draw from the seed (lineart's fine and coarse models
    differ). Needs controlnet_aux importable (see ``engine.annotators``).
    """
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"No tiny annotator for {name!r}; available: {', '.join(TINY_ANNOTATORS)}.")
    detector_class(name)  # imports controlnet_aux as annotate() does (without its __init__ if need be)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for filename in ANNOTATORS[name].files:
            path = folder / filename
            torch.save(builder(), path)
            paths.append(path)
    return tuple(paths)
