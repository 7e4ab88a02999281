"""ControlNet models (diffusers folder, single file with its config, or Hub id) and control images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..catalog.resolve import beside_config_dir
from ..errors import ModelNotFoundError, ModelUnreadableError, OfflineError
from ..plan import ControlUse
from ._quiet import no_progress_bars
from .annotators import ANNOTATORS, annotate
from .device import torch_dtype

__all__ = ["control_image", "load_controlnets"]

log = logging.getLogger(__name__)


def _load_one(model: str, dtype: str, device: str) -> Any:
    from diffusers import ControlNetModel
    from huggingface_hub.errors import LocalEntryNotFoundError

    path = Path(model).expanduser()
    tdtype = torch_dtype(dtype)
    try:
        with no_progress_bars():
            if path.is_dir():
                net = ControlNetModel.from_pretrained(path, dtype=tdtype, local_files_only=True)
            elif path.is_file():
                config = beside_config_dir(path)
                if not (config / "config.json").is_file():
                    raise ModelNotFoundError(
                        f"ControlNet {path.name} is a single file; place its diffusers config.json in "
                        f"{config.name}/ beside it (or use a diffusers ControlNet folder)."
                    )
                net = ControlNetModel.from_single_file(
                    path, config=str(config), local_files_only=True, dtype=tdtype
                )
            else:
                net = ControlNetModel.from_pretrained(model, dtype=tdtype)
    except LocalEntryNotFoundError as exc:
        raise OfflineError(
            f"ControlNet {model!r} is not a local path and the Hugging Face Hub cannot be reached; "
            "download it where there is a network or give a local folder."
        ) from exc
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ModelNotFoundError):
            raise
        raise ModelUnreadableError(f"Cannot load ControlNet {model}: {exc}") from exc
    return net if device == "cpu" else net.to(device)


def load_controlnets(
    base: Any, controls: tuple[ControlUse, ...], *, dtype: str, device: str
) -> tuple[Any, ...]:
    """The ControlNet modules for ``controls``, loaded once per model and kept with ``base``."""
    cache: dict[str, Any] = base.__dict__.setdefault("_ml_controlnets", {})
    nets = []
    for unit in controls:
        if unit.model not in cache:
            log.info("loading ControlNet %s", unit.model)
            cache[unit.model] = _load_one(unit.model, dtype, device)
        nets.append(cache[unit.model])
    return tuple(nets)


def control_image(
    unit: ControlUse, image: Any, width: int, height: int, *, annotator_dir: Path | None = None
) -> Any:
    """The control map for ``unit``: resized to the output size and preprocessed (unless "none");
    model-based types (depth, lineart …) load their weights from ``annotator_dir``."""
    from ..imaging.preprocess import preprocess
    from ..imaging.resize import ResizeMode, resize_image

    sized = resize_image(image, width, height, ResizeMode.CROP_AND_RESIZE)
    if unit.control_type == "none":
        return sized
    if unit.control_type in ANNOTATORS:
        return annotate(unit.control_type, sized, annotator_dir)
    return preprocess(unit.control_type, sized)
