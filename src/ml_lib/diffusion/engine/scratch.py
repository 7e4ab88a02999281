"""One reused buffer for the compute-dtype copies a model's stored-weight layers make for their forwards.

A layer whose weights are stored narrow (``engine/storage.py``) computes on an fp32 copy made for that
forward. Made with ``tensor.to(float32)``, each copy is a fresh allocation: above glibc's mmap threshold
(a few MB; an SD 1.5 UNet conv is 59 MB in fp32) that is a new mapping whose every page the kernel faults
in and zeroes, then unmaps, on every forward of every layer. Copying into pages already mapped costs a
third of that (measured here: 11 ms against 34 ms for a 59 MB conv weight, one thread). So the layers of
one pipeline's models (they run one after another) borrow views of one buffer, grown to the largest layer and
kept until :meth:`Scratch.release`.
The values are the same conversion (``copy_``), so the result is bit-identical.

The buffer is lent only when it is safe to overwrite on the next layer: with autograd off (a backward
would read the copies later) and not already lent (a covered layer inside another one). Otherwise the
layer gets a fresh copy, as before. Each thread has its own buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch

__all__ = ["Scratch"]

#: Views start at multiples of 16 elements (64 bytes for fp32), the alignment oneDNN prefers.
_ALIGN = 16


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


class Scratch:
    """A per-thread buffer lent out as compute-dtype copies of a layer's stored tensors."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __reduce__(self) -> tuple[type[Scratch], tuple[()]]:
        """A copied or pickled model gets an empty buffer of its own."""
        return (Scratch, ())

    def lend(self, tensors: Sequence[torch.Tensor], dtype: torch.dtype) -> list[torch.Tensor] | None:
        """``dtype`` copies of ``tensors`` as views of the buffer (call :meth:`give_back` after the
        forward), or None when the buffer cannot be lent now (the caller makes fresh copies)."""
        local = self._local
        if getattr(local, "lent", False) or torch.is_grad_enabled():
            return None
        need = sum(_aligned(t.numel()) for t in tensors)
        buf: torch.Tensor | None = getattr(local, "buf", None)
        if buf is None or buf.dtype != dtype or buf.numel() < need:
            local.buf = buf = None  # the old buffer goes before the bigger one is made
            with torch.inference_mode(False):  # a normal tensor, writable in and out of inference mode
                buf = local.buf = torch.empty(need, dtype=dtype)
        local.lent = True
        out, at = [], 0
        for t in tensors:
            view = buf[at : at + t.numel()].view(t.shape)
            view.copy_(t)
            out.append(view)
            at += _aligned(t.numel())
        return out

    def give_back(self) -> None:
        """The views lent by the last :meth:`lend` are no longer used."""
        self._local.lent = False

    def release(self) -> None:
        """Drop this thread's buffer (between generations, or when the model's phase is over)."""
        self._local.buf = None
        self._local.lent = False

    def held_bytes(self) -> int:
        """Bytes of this thread's buffer."""
        buf = getattr(self._local, "buf", None)
        return 0 if buf is None else buf.numel() * buf.element_size()
