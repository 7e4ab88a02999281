"""Write a .safetensors copy of a pickle checkpoint, on explicit opt-in only.

Loading uses ``torch.load(weights_only=True)``, which refuses to call anything but tensor rebuilders;
a file that needs more is refused, never run. The catalog (pure Python) never gets here: only
``ml-diffusion models convert --allow-pickle`` does.
"""

from __future__ import annotations

import logging
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import atomic_path
from ..errors import ModelNotFoundError, ModelUnreadableError, OutputNotWritableError, UnsupportedModelError

__all__ = ["ConvertResult", "convert_to_safetensors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConvertResult:
    """Where the copy was written, how many tensors it holds, and how many non-tensor entries were left out."""

    path: Path
    tensors: int
    skipped: int


def _flatten(obj: Any, prefix: str, out: dict[str, Any], skipped: list[str]) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, skipped)
    else:
        skipped.append(prefix)


def _state_dict(obj: Any) -> tuple[dict[str, Any], int]:
    if isinstance(obj, dict) and isinstance(obj.get("string_to_param"), dict):  # A1111 embedding
        params = list(obj["string_to_param"].values())
        return {"emb_params": params[0]}, len(obj) - 1
    for key in ("state_dict", "model", "params_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    tensors: dict[str, Any] = {}
    skipped: list[str] = []
    _flatten(obj, "", tensors, skipped)
    return tensors, len(skipped)


def _unshare(tensors: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses tensors sharing memory: give each its own contiguous copy where needed."""
    seen: set[int] = set()
    out = {}
    for name, t in tensors.items():
        t = t.contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def convert_to_safetensors(
    src: Path, dst: Path | None = None, *, allow_pickle: bool = False
) -> ConvertResult:
    """Load ``src`` with ``torch.load(weights_only=True)`` and write its tensors to ``dst`` atomically."""
    if not src.is_file():
        raise ModelNotFoundError(f"No file at {src}.")
    if src.suffix.lower() in (".safetensors", ".sft"):
        raise UnsupportedModelError(f"{src} is already a safetensors file.")
    if not allow_pickle:
        raise UnsupportedModelError(
            f"{src} is a pickle file; loading one can run code hidden in it. If you trust it, pass "
            "--allow-pickle: it is then loaded with torch.load(weights_only=True), which refuses code."
        )
    dst = dst or src.with_suffix(".safetensors")
    if dst.exists():
        raise OutputNotWritableError(f"{dst} already exists; choose another path with --out.")
    import torch
    from safetensors.torch import save_file

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(src, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        AttributeError,
    ) as exc:
        raise ModelUnreadableError(
            f"{src} cannot be loaded as plain weights (torch.load weights_only=True refused it: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); it was not converted."
        ) from exc
    tensors, skipped = _state_dict(obj)
    if not tensors:
        raise ModelUnreadableError(f"{src} holds no tensors; nothing to convert.")
    metadata = {"format": "pt", "converted_from": src.name}
    with atomic_path(dst, what=f"write {dst.name}", fix="give another path with --out") as tmp:
        save_file(_unshare(tensors), str(tmp), metadata=metadata)
    log.info(
        "converted %s to %s (%d tensors, %d non-tensor entries left out)", src, dst, len(tensors), skipped
    )
    return ConvertResult(dst, len(tensors), skipped)
