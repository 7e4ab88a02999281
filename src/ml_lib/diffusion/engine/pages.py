"""Hand a component's memory-mapped weight pages back to the OS once its phase is over (Linux).

With the CPU storage policy a checkpoint's fp16 weights stay in safetensors' private file mapping
(``engine/storage.py``). A page of that mapping counts in the process's resident set from the first
time a forward reads it, and stays counted: after one generation every component is resident, so the
peak RSS is the whole file plus the runtime, although the text encoders are idle while the UNet
denoises and the UNet is idle while the VAE decodes.

:func:`release_pages` drops the *clean, file-backed* pages of a module's weights from this process
with ``madvise(MADV_DONTNEED)``. The file stays in the OS page cache, so the next forward that reads a
dropped page faults it back in from memory, with the same bytes (nothing is read from the disk unless
the OS evicted the file meanwhile). Pages a write turned into private copies (a LoRA fused in place
into the stored weights) are anonymous memory, not file pages: ``/proc/self/pagemap`` tells them apart
and they are never dropped, since dropping them would undo the write. Only mappings of regular files
are considered; a tensor in ordinary (anonymous) memory is never touched.

Elsewhere (no ``/proc/self/pagemap``, no ``madvise``) it does nothing and returns 0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = [
    "file_mappings",
    "prompt_returns",
    "release_files",
    "release_pages",
    "release_tensors",
    "set_mmap_threshold",
    "trim_heap",
]

_PAGE = mmap.PAGESIZE
_PRESENT = 1 << 63
_FILE_PAGE = (
    1 << 61
)  # "page is a file page or a shared anonymous page" (Documentation/admin-guide/mm/pagemap)
_MADV_DONTNEED = 4
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
#: While a UNet denoises on stored weights, blocks this size and up get mappings of their own.
PROMPT_THRESHOLD = 2**20
#: Afterwards: glibc's ceiling for its dynamic threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit).
CEILING_THRESHOLD = 32 * 2**20


@dataclass(frozen=True, slots=True)
class _Mapping:
    start: int
    end: int
    path: str


def file_mappings() -> list[_Mapping]:
    """This process's mappings of regular files (from ``/proc/self/maps``); empty where it is missing."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue  # anonymous, [heap], [stack] …
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        found.append(_Mapping(lo, hi, parts[5].rstrip("\n")))
    return found


def _tensor_ranges(modules: Iterable[torch.nn.Module]) -> list[tuple[int, int]]:
    """Page-aligned (start, end) address ranges of the modules' own tensors, merged (see :func:`_ranges`)."""
    return _ranges(t for module in modules for t in (*module.parameters(), *module.buffers()))


def _ranges(tensors: Iterable[torch.Tensor]) -> list[tuple[int, int]]:
    """Page-aligned (start, end) address ranges of ``tensors``, merged; a page shared with a neighbouring
    tensor is left out (``start`` rounds up, ``end`` rounds down)."""
    ranges = []
    for t in tensors:
        if t.device.type != "cpu" or t.is_meta or not t.numel():
            continue
        lo = t.data_ptr()
        hi = lo + t.numel() * t.element_size()
        lo = -(-lo // _PAGE) * _PAGE
        hi = hi // _PAGE * _PAGE
        if hi > lo:
            ranges.append((lo, hi))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _clip(ranges: list[tuple[int, int]], maps: list[_Mapping]) -> Iterator[tuple[int, int]]:
    """The parts of ``ranges`` that lie inside a file mapping."""
    for lo, hi in ranges:
        for m in maps:
            a, b = max(lo, m.start), min(hi, m.end)
            if a < b:
                yield a, b


def _clean_runs(pagemap: int, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Runs of resident file-backed pages in [lo, hi), read from the pagemap file descriptor."""
    import numpy as np

    data = os.pread(pagemap, (hi - lo) // _PAGE * 8, lo // _PAGE * 8)
    entries = np.frombuffer(data, dtype="<u8")
    ok = ((entries & np.uint64(_PRESENT | _FILE_PAGE)) == np.uint64(_PRESENT | _FILE_PAGE)).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], ok, [0]))))  # run starts and ends, alternating
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        yield lo + int(start) * _PAGE, lo + int(end) * _PAGE


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name, use_errno=True)


def trim_heap() -> bool:
    """Return the C heap's free memory to the OS (glibc's ``malloc_trim``): what a phase's freed
    activations and fp32 weight copies left in the heap stops counting before the next phase fills it
    again. False where there is no ``malloc_trim`` (not glibc)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is None:
        return False
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    trim(0)
    return True


def set_mmap_threshold(nbytes: int) -> bool:
    """Make glibc serve allocations of ``nbytes`` and up with mappings of their own, given back to the OS
    when freed (``mallopt(M_MMAP_THRESHOLD)``; this also ends glibc's dynamic threshold, which otherwise
    rises to 32 MB after the first large free). False where there is no ``mallopt`` (not glibc)."""
    libc = _libc()
    fn = getattr(libc, "mallopt", None) if libc is not None else None
    if fn is None:
        return False
    fn.argtypes = (ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    return bool(fn(_M_MMAP_THRESHOLD, nbytes))


@contextmanager
def prompt_returns(active: bool) -> Iterator[None]:
    """Within the block, blocks of :data:`PROMPT_THRESHOLD` and up are mapped for themselves, so what a
    denoising step frees goes back to the OS at once instead of fragmenting the heap (SD 1.5 256², 3 steps
    on stored weights: the denoise peak 2.52 GB against 2.62-2.64 GB, no slower); afterwards the threshold
    is :data:`CEILING_THRESHOLD`, where glibc's own policy ends up, so the VAE decode reuses the heap for its
    large activations. The setting is process-wide: a generation running beside this one is affected in
    speed and memory, never in results. ``active=False``: nothing changes."""
    if not active or not set_mmap_threshold(PROMPT_THRESHOLD):
        yield
        return
    try:
        yield
    finally:
        set_mmap_threshold(CEILING_THRESHOLD)


def _madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    libc = _libc()
    if libc is None:
        return None
    fn = libc.madvise
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def release_pages(*modules: torch.nn.Module | None) -> int:
    """Drop the resident, clean, file-backed pages of the modules' weights from this process; the bytes
    dropped. They come back from the page cache when next read. 0 where Linux' interfaces are missing."""
    present = [m for m in modules if m is not None]
    maps = file_mappings() if present else []
    return _drop(list(_clip(_tensor_ranges(present), maps))) if maps else 0


def release_tensors(tensors: Iterable[torch.Tensor]) -> int:
    """Drop the resident, clean, file-backed pages of ``tensors`` (e.g. the fp16 originals a conversion has
    just replaced); the bytes dropped."""
    ranges = _ranges(tensors)
    maps = file_mappings() if ranges else []
    return _drop(list(_clip(ranges, maps))) if maps else 0


def release_files(*modules: torch.nn.Module | None) -> int:
    """Drop every resident, clean page of each file mapping that holds a weight of the modules — also the
    pages no live tensor uses any more (the fp16 originals of weights upcast or converted at load), which
    :func:`release_pages` cannot reach. Meant for right after a load; the bytes dropped."""
    present = [m for m in modules if m is not None]
    maps = file_mappings() if present else []
    if not maps:
        return 0
    ranges = _tensor_ranges(present)
    holding = [m for m in maps if any(lo < m.end and m.start < hi for lo, hi in ranges)]
    return _drop([(m.start, m.end) for m in holding])


def _drop(spans: list[tuple[int, int]]) -> int:
    """madvise(MADV_DONTNEED) the resident file-backed pages inside ``spans``; the bytes dropped."""
    if not spans:
        return 0
    madvise = _madvise()
    if madvise is None:
        return 0
    try:
        pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return 0
    dropped = 0
    try:
        for lo, hi in spans:
            for a, b in _clean_runs(pagemap, lo, hi):
                if madvise(a, b - a, _MADV_DONTNEED) == 0:
                    dropped += b - a
    finally:
        os.close(pagemap)
    return dropped
