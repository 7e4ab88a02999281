"""ControlNet models (diffusers folder, single file with its config, or Hub id) and control images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._assets import local_path
from ..errors import ModelNotFoundError, ModelUnreadableError, OfflineError
from ..plan import ControlUse
from ._quiet import no_progress_bars
from .annotators import ANNOTATORS, annotate
from .device import torch_dtype

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["control_image", "load_controlnets"]

log = logging.getLogger(__name__)


def _load_one(unit: ControlUse, dtype: str, device: str) -> Any:
    """A ControlNet as the resolve step found it: a folder, a single file with its config, or a Hub id."""
    from diffusers import ControlNetModel
    from huggingface_hub.errors import LocalEntryNotFoundError

    path = Path(local_path(unit.model))
    tdtype = torch_dtype(dtype)
    try:
        with no_progress_bars():
            if path.is_dir():
                net = ControlNetModel.from_pretrained(path, dtype=tdtype, local_files_only=True)
            elif unit.config_dir is not None:
                net = ControlNetModel.from_single_file(
                    path, config=local_path(unit.config_dir), local_files_only=True, dtype=tdtype
                )
            elif path.is_file():
                raise ModelNotFoundError(
                    f"ControlNet {path.name} is a single file and the plan names no config folder for it; "
                    "plan it again (its diffusers config.json goes in <stem>.config/ beside it)."
                )
            else:
                net = ControlNetModel.from_pretrained(unit.model, dtype=tdtype)
    except LocalEntryNotFoundError as exc:
        raise OfflineError(
            f"ControlNet {unit.model!r} is not a local path and the Hugging Face Hub cannot be reached; "
            "download it where there is a network or give a local folder."
        ) from exc
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"ControlNet {unit.model}: {exc}") from exc
    except ModelNotFoundError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelUnreadableError(f"Cannot load ControlNet {unit.model}: {exc}") from exc
    return net if device == "cpu" else net.to(device)


def load_controlnets(
    loaded: LoadedPipeline, controls: tuple[ControlUse, ...], *, dtype: str, device: str
) -> tuple[Any, ...]:
    """The ControlNet modules for ``controls``, kept in ``loaded``; ControlNets (and the views built with
    them) that this plan does not use are dropped, so at most one plan's units stay in memory."""
    wanted = {unit.model for unit in controls}
    for model in [m for m in loaded.controlnets if m not in wanted]:
        log.info("dropping ControlNet %s", model)
        del loaded.controlnets[model]
    for key in [k for k in loaded.views if not set(k[1]) <= wanted]:
        del loaded.views[key]
    nets = []
    for unit in controls:
        if unit.model not in loaded.controlnets:
            log.info("loading ControlNet %s", unit.model)
            loaded.controlnets[unit.model] = _load_one(unit, dtype, device)
        nets.append(loaded.controlnets[unit.model])
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
