"""What a pooled model holds (bytes of unique tensor storage, RAM and VRAM) and how its files look on disk.

Bytes are counted per storage: a module shared by several pipelines (``from_pipe`` views of one
checkpoint), or a tensor viewed twice, counts once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .._assets import local_path

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["Fingerprint", "fingerprint", "held_bytes", "record_bytes", "record_shape"]

#: (relative path, size, mtime ns, ctime ns, inode) of each file; None for a model that is no local path.
Fingerprint = tuple[tuple[str, int, int, int, int], ...] | None


def _modules(objects: Iterable[Any]) -> Iterator[torch.nn.Module]:
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            yield obj
        components = getattr(obj, "components", None)
        if isinstance(components, dict):
            yield from (m for m in components.values() if isinstance(m, torch.nn.Module))


def _tensors(modules: Iterable[torch.nn.Module]) -> Iterator[torch.Tensor]:
    for module in modules:
        for sub in module.modules():
            yield from (t for t in sub._parameters.values() if t is not None)
            yield from (t for t in sub._buffers.values() if t is not None)


def held_bytes(objects: Iterable[Any], extra: Iterable[torch.Tensor] = ()) -> tuple[int, int]:
    """(RAM, VRAM) bytes of the distinct tensor storages in ``objects`` (modules, or pipelines through
    their ``components``) and ``extra`` tensors; meta tensors hold nothing."""
    seen: set[tuple[str, int]] = set()
    ram = vram = 0
    for tensor in (*_tensors(_modules(objects)), *extra):
        if tensor.device.type == "meta":
            continue
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        if key in seen:
            continue
        seen.add(key)
        if tensor.device.type == "cpu":
            ram += storage.nbytes()
        else:
            vram += storage.nbytes()
    return ram, vram


def record_shape(loaded: LoadedPipeline) -> tuple[object, ...]:
    """What can change a pooled record's bytes (its components, views, ControlNets, LoRAs, IP-Adapters):
    re-measured only when this changes, so a warm hit costs no walk over every tensor."""
    pipes = (loaded.pipe, *loaded.views.values())
    ids = tuple(id(m) for p in pipes for m in getattr(p, "components", {}).values())
    return (
        ids,
        tuple(loaded.views),
        tuple(loaded.controlnets),
        tuple(loaded.loras.loaded.items()),
        len(loaded.loras.backup),
        loaded.ip_adapters.loaded,
        tuple(loaded.embeddings),
    )


def record_bytes(loaded: LoadedPipeline) -> tuple[int, int]:
    """(RAM, VRAM) bytes a pooled record holds: its pipeline, views and ControlNets, each storage once, and
    the base weights a fused LoRA replaced."""
    backup = (tensor for _layer, tensor in loaded.loras.backup.values())
    return held_bytes([loaded.pipe, *loaded.views.values(), *loaded.controlnets.values()], backup)


def _stat(path: Path, rel: str) -> tuple[str, int, int, int, int]:
    st = path.stat()
    return rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def fingerprint(reference: str) -> Fingerprint:
    """Size, times and inode of the model's file, or of every file under its folder: any write, replace or
    touch changes it. None when ``reference`` is not a local path (a Hub id)."""
    path = Path(local_path(reference))
    try:
        if path.is_file():
            return (_stat(path, ""),)
        if path.is_dir():
            out = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    full = Path(root, name)
                    out.append(_stat(full, str(full.relative_to(path))))
            return tuple(out)
    except OSError:
        return None  # vanished between the check and the stat: the loader reports it
    return None
