"""Load a diffusers pipeline for a ModelRef: diffusers folder, single-file checkpoint (offline), or Hub id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import diffusers
import torch
from transformers import CLIPTokenizer

from .._assets import asset_path, local_path
from ..catalog.families import Family
from ..errors import (
    ModelNotFoundError,
    ModelUnreadableError,
    OfflineError,
    OutOfMemory,
    UnsupportedModelError,
)
from ..plan import ModelFormat, ModelRef
from ..resolve.checkpoint import hub_reachable
from ._oom import is_out_of_memory
from ._quiet import no_progress_bars, no_torchvision_fallback_notice
from .device import torch_dtype

__all__ = ["load_pipeline", "load_prepared", "pipeline_class", "shipped_tokenizer"]

log = logging.getLogger(__name__)

_PIPELINES = {
    Family.SD1: "StableDiffusionPipeline",
    Family.SD2: "StableDiffusionPipeline",
    Family.DEMO: "StableDiffusionPipeline",
    Family.SDXL: "StableDiffusionXLPipeline",
    Family.SDXL_REFINER: "StableDiffusionXLImg2ImgPipeline",
}


def pipeline_class(family: Family) -> Any:
    """The diffusers pipeline class for a family."""
    try:
        with no_torchvision_fallback_notice():  # importing a pipeline imports transformers' image processors
            return getattr(diffusers, _PIPELINES[family])
    except KeyError:
        raise UnsupportedModelError(f"No pipeline for family {family.value!r} in this version.") from None


def shipped_tokenizer(pad_token: str | None = None) -> CLIPTokenizer:
    """The CLIP tokenizer shipped with the package (SD1.x; ``pad_token="!"`` for SD2.x / SDXL's second)."""
    folder = asset_path("clip_tokenizer")
    kwargs: dict[str, Any] = {"pad_token": pad_token} if pad_token else {}
    return CLIPTokenizer.from_pretrained(folder, **kwargs)


def _tokenizers(family: Family, config_dir: Path) -> dict[str, Any]:
    """Tokenizers to pass to from_single_file when the config folder does not carry them."""
    out: dict[str, Any] = {}
    if family in (Family.SD1, Family.SD2, Family.SDXL) and not (config_dir / "tokenizer").is_dir():
        out["tokenizer"] = shipped_tokenizer("!" if family is Family.SD2 else None)
    if family in (Family.SDXL, Family.SDXL_REFINER) and not (config_dir / "tokenizer_2").is_dir():
        out["tokenizer_2"] = shipped_tokenizer("!")
    return out


def _family_kwargs(family: Family) -> dict[str, Any]:
    """No safety checker for SD (A1111 has none either); no invisible watermark for SDXL."""
    if family in (Family.SD1, Family.SD2, Family.DEMO):
        return {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    return {"add_watermarker": False}


def _from_single_file(cls: Any, model: ModelRef, dtype: Any) -> Any:
    if not model.config_dir:
        raise UnsupportedModelError(f"{model.reference}: no config folder to load this single file with.")
    config = Path(local_path(model.config_dir))
    family = Family(model.family)
    kwargs: dict[str, Any] = dict(config=str(config), local_files_only=True, dtype=dtype)
    kwargs.update(_tokenizers(family, config))
    kwargs.update(_family_kwargs(family))
    return cls.from_single_file(local_path(model.reference), **kwargs)


def _from_pretrained(cls: Any, model: ModelRef, dtype: Any) -> Any:
    kwargs: dict[str, Any] = {"dtype": dtype}
    if model.format is ModelFormat.DIFFUSERS or not hub_reachable():  # offline: the cache, no retries
        kwargs["local_files_only"] = True
    kwargs.update(_family_kwargs(Family(model.family)))
    return cls.from_pretrained(local_path(model.reference), **kwargs)


def load_pipeline(model: ModelRef, *, dtype: str, device: str) -> Any:
    """Load ``model`` as a pipeline in ``dtype`` on ``device``; typed errors name the fix."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    cls = pipeline_class(Family(model.family))
    tdtype = torch_dtype(dtype)
    log.info("loading %s (%s, %s) as %s", model.reference, model.format.value, model.family, cls.__name__)
    try:
        with no_progress_bars(), no_torchvision_fallback_notice():
            if model.format is ModelFormat.SINGLE_FILE:
                pipe = _from_single_file(cls, model, tdtype)
            else:
                pipe = _from_pretrained(cls, model, tdtype)
    except LocalEntryNotFoundError as exc:
        raise OfflineError(
            f"{model.reference} needs files from the Hugging Face Hub, which cannot be reached: {exc}. "
            "Download the model where there is a network, or give a local path."
        ) from exc
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{model.reference}: {exc}") from exc
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise _unreadable(model, exc) from exc
        raise OutOfMemory(
            f"Out of memory while loading {model.reference}: close other programs, or use a smaller model.",
            "load",
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise _unreadable(model, exc) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe if device == "cpu" else pipe.to(device)


def _unreadable(model: ModelRef, exc: BaseException) -> ModelUnreadableError:
    return ModelUnreadableError(
        f"Cannot load {model.reference} as a {model.family} model: {exc}. "
        "Check the file is complete and of the family shown; give --config for unusual architectures."
    )


def load_prepared(model: ModelRef, dtype: str, device: str, memory: str, storage: str | None = None) -> Any:
    """The default loader: the pipeline for ``model`` with the ``memory`` strategy applied; with
    ``storage``, its weights stay in that dtype and every layer computes in ``dtype``."""
    from .memory import apply_strategy
    from .pages import release_files
    from .storage import apply_storage

    pipe = load_pipeline(model, dtype=storage or dtype, device=device)
    apply_strategy(pipe, memory, device, compute=dtype)
    if storage is not None:
        apply_storage(pipe, storage, dtype)
    if device == "cpu":  # what the load read from a memory-mapped file is back in the page cache
        release_files(*(c for c in pipe.components.values() if isinstance(c, torch.nn.Module)))
    return pipe
