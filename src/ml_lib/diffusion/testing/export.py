"""Write diffusers components as one A1111/LDM single-file checkpoint, and the weightless config folder.

The file :func:`save_single_file` writes loads back with ``Pipeline.from_single_file(file,
config=folder, local_files_only=True)`` to tensors equal to the originals; the key layout is
described in :mod:`.ldm_layout`. Both writes are atomic.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_path
from ..errors import DiskFullError, OutputError, OutputNotWritableError, UnsupportedModelError
from .ldm_layout import TextLayout, to_ldm_state_dict

__all__ = ["save_single_file", "write_config_folder"]

logger = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".msgpack", ".h5")


def _components(pipe_or_components: Any) -> Mapping[str, Any]:
    if isinstance(pipe_or_components, Mapping):
        return pipe_or_components
    components = getattr(pipe_or_components, "components", None)
    if not isinstance(components, Mapping):
        raise UnsupportedModelError(
            "Expected a diffusers pipeline or a mapping of its components, "
            f"got {type(pipe_or_components).__name__}."
        )
    return components


def _default_metadata(components: Mapping[str, Any]) -> dict[str, str]:
    meta = {"format": "pt"}
    scheduler = components.get("scheduler")
    prediction = getattr(getattr(scheduler, "config", None), "prediction_type", None)
    if prediction in ("epsilon", "v_prediction"):
        meta["modelspec.prediction_type"] = "v" if prediction == "v_prediction" else "epsilon"
    return meta


def _own_storage(state: Mapping[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors, each on its own storage (safetensors refuses shared storage)."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        tensor = state[name].detach()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensor = tensor.to("cpu").contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen or tensor.numel() != tensor.untyped_storage().nbytes() // tensor.element_size():
            tensor = tensor.clone()
            storage = tensor.untyped_storage().data_ptr()
        seen.add(storage)
        out[name] = tensor
    return out


def _temp_sibling(target: Path, suffix: str = ".tmp") -> Path:
    """An unused hidden name beside ``target`` (created by the caller, so the umask gives normal modes)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{suffix}")


def _write_error(path: Path, exc: Exception) -> Exception:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DiskFullError(
            f"The disk filled while writing {path}; nothing was left behind. Free space and retry."
        )
    return OutputNotWritableError(f"Cannot write {path}: {exc}. Choose a writable folder.")


def _short_write(path: Path, needed: int, what: str) -> OSError:
    """The OSError for a file that came out short: ENOSPC when the disk has less room than it needs."""
    try:
        full = shutil.disk_usage(path.parent).free < needed
    except OSError:
        full = False
    return OSError(errno.ENOSPC if full else errno.EIO, f"{path.name} came out short ({what})")


def save_single_file(
    pipe_or_components: Any,
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str] | None = None,
    dtype: torch.dtype | None = None,
    text_layout: TextLayout = "auto",
) -> Path:
    """Write a pipeline's UNet, VAE and text encoder(s) as one A1111/LDM ``.safetensors`` file.

    Args:
        pipe_or_components: a diffusers pipeline, or a mapping with ``unet``, ``vae``, ``text_encoder``
            and (SDXL) ``text_encoder_2``.
        path: the file to write; its folder is created if missing. Written atomically (a temp file in the
            same folder, then ``os.replace``): an interrupted write leaves no partial file.
        metadata: safetensors header metadata (str → str). Added to ``{"format": "pt"}`` and, when a
            scheduler is present, ``modelspec.prediction_type`` (``"epsilon"`` or ``"v"``); given keys win.
        dtype: cast floating-point tensors to this dtype (e.g. ``torch.float16``); default keeps them.
        text_layout: see :func:`to_ldm_state_dict`.

    Returns:
        The path written.

    Raises:
        UnsupportedModelError: components that have no LDM layout.
        OutputError: metadata that is not str → str.
        OutputNotWritableError, DiskFullError: the file could not be written.
    """
    components = _components(pipe_or_components)
    if components.get("unet") is None or components.get("vae") is None:
        raise UnsupportedModelError("A single-file checkpoint needs a 'unet' and a 'vae' component.")
    meta = _default_metadata(components)
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise OutputError(f"safetensors metadata must map str to str; got {key!r}: {value!r}.")
        meta[key] = value
    state = to_ldm_state_dict(
        components["unet"],
        components["vae"],
        components.get("text_encoder"),
        components.get("text_encoder_2"),
        text_layout=text_layout,
    )
    tensors = _own_storage(state, dtype)

    from safetensors import SafetensorError, safe_open
    from safetensors.torch import save_file

    target = Path(path)
    needed = sum(t.numel() * t.element_size() for t in tensors.values())
    with atomic_path(target, what=f"write {target.name}", fix="choose another folder") as tmp:
        try:
            save_file(tensors, str(tmp), metadata=meta)
            # safetensors can leave a short file without raising: read the header back (checks the length).
            with safe_open(str(tmp), framework="pt") as check:
                written = len(check.keys())
        except SafetensorError as exc:
            raise _short_write(target, needed, str(exc)) from exc
        if written != len(tensors):
            raise _short_write(target, needed, f"{written} of {len(tensors)} tensors were written")
    logger.info("Wrote %d tensors to %s", len(tensors), target)
    return target


def _save_component_config(name: str, component: Any, folder: Path) -> None:
    """Write one component's configuration (never its weights) into ``folder``."""
    if isinstance(component, torch.nn.Module):
        config = getattr(component, "config", None)
        if hasattr(component, "save_config") and getattr(component, "config_name", None):
            component.save_config(folder)  # diffusers models: config.json
        elif hasattr(config, "save_pretrained"):
            config.save_pretrained(folder)  # transformers models: config.json
        else:
            raise UnsupportedModelError(
                f"Component {name!r} ({type(component).__name__}) has no savable config."
            )
    elif hasattr(component, "save_pretrained"):
        component.save_pretrained(folder)  # schedulers, tokenizers, image processors: no weights
    else:
        raise UnsupportedModelError(f"Component {name!r} ({type(component).__name__}) cannot be saved.")


def write_config_folder(pipe: Any, folder: str | os.PathLike[str]) -> Path:
    """Write a weightless diffusers config folder for ``pipe``: what ``from_single_file(config=...)`` needs.

    The folder gets ``model_index.json``, each model's ``config.json``, the scheduler config and the
    tokenizer files, and no weights. It is built beside the target and moved into place, replacing an
    existing folder of that name.

    Raises:
        UnsupportedModelError: ``pipe`` is not a diffusers pipeline, or a component cannot be described.
        OutputNotWritableError, DiskFullError: the folder could not be written.
    """
    components = _components(pipe)
    if not hasattr(pipe, "save_config"):
        raise UnsupportedModelError(
            "write_config_folder needs a diffusers pipeline (it writes model_index.json)."
        )
    target = Path(folder)
    tmp = _temp_sibling(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        pipe.save_config(tmp)
        for name, component in components.items():
            if component is not None:
                _save_component_config(name, component, tmp / name)
        weights = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.name.endswith(_WEIGHT_SUFFIXES))
        if weights:
            raise UnsupportedModelError(f"A config folder must hold no weights, but saving wrote {weights}.")
        _swap_folder(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(target, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _swap_folder(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing an existing folder only once ``new`` is complete."""
    if not target.exists():
        os.replace(new, target)
        return
    old = _temp_sibling(target, ".old")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
