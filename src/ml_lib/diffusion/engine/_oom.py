"""Recognise running out of memory, on any device, so that it becomes one typed line, not a traceback."""

from __future__ import annotations

import torch

__all__ = ["is_out_of_memory"]

_MARKERS = ("DefaultCPUAllocator: can't allocate", "not enough memory", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is running out of memory: CUDA/MPS (torch.OutOfMemoryError), CPU (torch's
    "DefaultCPUAllocator: can't allocate" RuntimeError) or Python's MemoryError."""
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _MARKERS)
