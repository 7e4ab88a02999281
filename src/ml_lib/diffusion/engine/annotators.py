"""Model-based ControlNet preprocessors: controlnet_aux detectors with weights from a local folder.

The folder (``Settings.annotator_dir``) holds the lllyasviel/Annotators files under their own names;
the Hub is never asked. What runs depends on what is installed (controlnet-aux 0.0.10):

- ``lineart``, ``lineart_anime``, ``hed``, ``pidinet``, ``mlsd`` need only torch, einops and
  opencv-python-headless next to controlnet_aux.
- ``depth`` (MiDaS), ``openpose`` and ``normal`` (NormalBae) also need torchvision: their modules import
  it at import time (``midas/api.py``, ``open_pose/face.py``, ``normalbae/__init__.py``; MiDaS also
  needs timm, openpose scikit-image). Where the PyPI torchvision does not match the installed torch
  (a CPU torch from elsewhere), they cannot run, and :class:`AnnotatorUnavailableError` names the module.

controlnet_aux's ``__init__`` imports every detector, so without torchvision ``import controlnet_aux``
fails even for the detectors that never use it; then the package is registered without running its
``__init__`` and only the needed detector module is imported (see :func:`detector_class`).

The weight files are pickles (``.pth``): they are loaded only through torch's weights-only unpickler.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from PIL import Image

from ..errors import (
    AnnotatorUnavailableError,
    ConfigError,
    GenerationError,
    ModelUnreadableError,
    RequestError,
)

__all__ = ["ANNOTATORS", "Annotator", "annotate", "detector_class"]

log = logging.getLogger(__name__)

_PACKAGE = "controlnet_aux"
_INSTALL = 'pip install "ml-lib[annotators]"'
_NO_TORCHVISION = (
    "where torchvision must not be installed: pip install --no-deps controlnet-aux einops "
    "opencv-python-headless (enough for lineart, lineart_anime, hed, pidinet and mlsd)"
)
_SOURCE = "https://huggingface.co/lllyasviel/Annotators"


@dataclass(frozen=True, slots=True)
class Annotator:
    """A controlnet_aux detector: its module, class, the weight files it loads and extra modules."""

    module: str
    detector: str
    files: tuple[str, ...]
    needs: tuple[str, ...] = ()


#: Preprocessor name → detector (read-only). File names are those ``from_pretrained(folder)`` opens.
ANNOTATORS: Mapping[str, Annotator] = MappingProxyType(
    {
        "lineart": Annotator("lineart", "LineartDetector", ("sk_model.pth", "sk_model2.pth")),
        "lineart_anime": Annotator("lineart_anime", "LineartAnimeDetector", ("netG.pth",)),
        "hed": Annotator("hed", "HEDdetector", ("ControlNetHED.pth",)),
        "pidinet": Annotator("pidi", "PidiNetDetector", ("table5_pidinet.pth",)),
        "mlsd": Annotator("mlsd", "MLSDdetector", ("mlsd_large_512_fp32.pth",)),
        "depth": Annotator(
            "midas", "MidasDetector", ("dpt_hybrid-midas-501f0c75.pt",), ("torchvision", "timm")
        ),
        "openpose": Annotator(
            "open_pose",
            "OpenposeDetector",
            ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"),
            ("torchvision", "scikit-image"),
        ),
        "normal": Annotator("normalbae", "NormalBaeDetector", ("scannet.pt",), ("torchvision",)),
    }
)


def annotate(name: str, image: Image.Image, annotator_dir: Path | None, **params: Any) -> Image.Image:
    """Run the model-based preprocessor ``name`` on ``image`` with weights from ``annotator_dir``.

    Returns an RGB image of ``image``'s size. ``params`` go to the detector; ``detect_resolution``
    defaults to the image's short side (A1111's "pixel perfect"; give 512 for its fixed default).
    Raises RequestError for an unknown name, AnnotatorUnavailableError when the folder, package, a
    module or a weight file is missing, ModelUnreadableError for weights that do not load.
    """
    entry = _entry(name)
    folder = _check_available(name, entry, annotator_dir)
    detector = _load(name, entry, folder)
    side = max(64, min(image.size))  # controlnet_aux rounds sizes to multiples of 64
    params.setdefault("detect_resolution", side)  # A1111's "pixel perfect": detect at the output size
    params.setdefault("image_resolution", side)
    result = detector(image.convert("RGB"), **params)
    if isinstance(result, np.ndarray):
        result = Image.fromarray(result)
    if not isinstance(result, Image.Image):
        raise GenerationError(
            f"controlnet_aux {entry.detector} returned {type(result).__name__}, not an image."
        )
    out = result.convert("RGB")
    return out if out.size == image.size else out.resize(image.size, Image.Resampling.BILINEAR)


def detector_class(name: str) -> Any:
    """The controlnet_aux detector class of the preprocessor ``name``, importing only its own module.

    Raises AnnotatorUnavailableError when the package or a module the detector imports is missing.
    """
    entry = _entry(name)
    if not _package_installed():
        raise AnnotatorUnavailableError(
            f"The {name!r} preprocessor cannot run: the controlnet_aux package is not installed "
            f"({_INSTALL}; {_NO_TORCHVISION}).",
            ("controlnet-aux",),
        )
    module_name = f"{_PACKAGE}.{entry.module}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if _PACKAGE in sys.modules:
            raise _module_error(name, entry, exc) from exc
        # The package __init__ failed on another detector's dependency (torchvision, skimage …):
        # register the package without running its __init__ and import the one module we need.
        log.debug("import %s failed (%s); importing %s alone", _PACKAGE, exc, module_name)
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None:
            raise _module_error(name, entry, exc) from exc
        sys.modules[_PACKAGE] = importlib.util.module_from_spec(spec)
        try:
            module = importlib.import_module(module_name)
        except ImportError as inner:
            raise _module_error(name, entry, inner) from inner
    detector = getattr(module, entry.detector, None)
    if detector is None:
        raise AnnotatorUnavailableError(
            f"This controlnet_aux has no {entry.detector} in {module_name}; pip install -U controlnet-aux.",
            ("controlnet-aux",),
        )
    return detector


def _entry(name: str) -> Annotator:
    entry = ANNOTATORS.get(name)
    if entry is None:
        raise RequestError(
            f"Unknown model-based preprocessor {name!r}; known: {', '.join(sorted(ANNOTATORS))}."
        )
    return entry


def _package_installed() -> bool:
    if _PACKAGE in sys.modules:
        return sys.modules[_PACKAGE] is not None
    return importlib.util.find_spec(_PACKAGE) is not None


def _check_available(name: str, entry: Annotator, folder: Path | None) -> Path:
    """``folder`` when everything is there; else one error naming all that is missing."""
    problems: list[str] = []
    missing: list[str] = []
    if not _package_installed():
        problems.append(f"the controlnet_aux package is not installed ({_INSTALL}; {_NO_TORCHVISION})")
        missing.append("controlnet-aux")
    if folder is None:
        problems.append(
            "no annotator folder was given (set ML_DIFFUSION_ANNOTATORS, or Settings.annotator_dir, to the "
            f"folder holding {', '.join(entry.files)})"
        )
    else:
        absent = [f for f in entry.files if not (folder / f).is_file()]
        if absent:
            problems.append(
                f"weight file(s) {', '.join(absent)} missing in {folder} (download them from {_SOURCE} "
                "where there is a network and put them there, or set ML_DIFFUSION_ANNOTATORS to the "
                "folder that has them)"
            )
            missing.extend(str(folder / f) for f in absent)
    if problems or folder is None:
        raise AnnotatorUnavailableError(
            f"The {name!r} preprocessor cannot run: {'; '.join(problems)}. "
            "Or pass an already preprocessed control image with control type 'none'.",
            tuple(missing),
        )
    return folder


def _module_error(name: str, entry: Annotator, exc: ImportError) -> AnnotatorUnavailableError:
    module = exc.name or str(exc)
    needs = f" (this detector needs {', '.join(entry.needs)})" if entry.needs else ""
    hint = (
        "; with a torch from another index (e.g. a CPU-only build), install the torchvision built for it "
        "from that same index instead, since PyPI's may replace or not match it"
        if module == "torchvision"
        else ""
    )
    return AnnotatorUnavailableError(
        f"The {name!r} preprocessor cannot run: controlnet_aux's {entry.detector} imports {module!r}, which "
        f"is not installed{needs}. {_INSTALL} installs it{hint}.",
        (module,),
    )


def _require_weights_only_loads() -> None:
    """The weight files are pickles and controlnet_aux calls ``torch.load`` without ``weights_only``:
    only torch >= 2.6 then uses its tensors-only unpickler. Refuse what would run pickled code."""
    match = re.match(r"(\d+)\.(\d+)", importlib.metadata.version("torch"))
    old = match is None or (int(match[1]), int(match[2])) < (2, 6)
    forced = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").strip().lower() in {
        "1",
        "y",
        "yes",
        "true",
    }
    if old or forced:
        raise ConfigError(
            "Annotator weights are pickle files and are only loaded with torch's weights-only loader: "
            + ("upgrade torch to 2.6 or newer." if old else "unset TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.")
        )


def _load(name: str, entry: Annotator, folder: Path) -> Any:
    _require_weights_only_loads()
    detector = detector_class(name)
    log.info("loading the %s annotator from %s", name, folder)
    try:
        # A folder path makes controlnet_aux join file names onto it; it never calls the Hub then.
        return detector.from_pretrained(os.fspath(folder))
    except (OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        raise ModelUnreadableError(
            f"The {name!r} annotator weights in {folder} ({', '.join(entry.files)}) cannot be loaded: {exc}. "
            f"Replace them with the files of {_SOURCE}."
        ) from exc
