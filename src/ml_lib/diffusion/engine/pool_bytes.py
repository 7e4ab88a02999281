"""What a pooled model holds (bytes of unique tensor storage, RAM and VRAM) and how its files look on disk.

Bytes are counted per storage: a module shared by several pipelines (``from_pipe`` views of one
checkpoint), or a tensor viewed twice, counts once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from .._assets import local_path

__all__ = ["Fingerprint", "fingerprint", "held_bytes"]

#: (relative path, size, mtime ns, ctime ns, inode) of each file; None for a model that is no local path.
Fingerprint = tuple[tuple[str, int, int, int, int], ...] | None


def _modules(objects: Iterable[Any]) -> Iterator[torch.nn.Module]:
    for obj in objects:
        if isinstance(obj, torch.nn.Module):
            yield obj
        components = getattr(obj, "components", None)
        if isinstance(components, dict):
            yield from (m for m in components.values() if isinstance(m, torch.nn.Module))


def held_bytes(objects: Iterable[Any]) -> tuple[int, int]:
    """(RAM, VRAM) bytes of the distinct tensor storages in ``objects`` (modules, or pipelines through
    their ``components``); meta tensors hold nothing."""
    seen: set[tuple[str, int]] = set()
    ram = vram = 0
    for module in _modules(objects):
        for tensor in (*module.parameters(), *module.buffers()):
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
