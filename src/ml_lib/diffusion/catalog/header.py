"""Read a safetensors header (tensor names, dtypes, shapes, metadata) without touching tensor data.

The file is opened once, non-blocking, and checked to be the regular file that was looked at; a file
that changes while its header is read is reported, not half-read. Parsing has a fast path (one C-level
``orjson.loads`` plus checks that need no per-tensor Python objects) and, when something looks wrong, a
slow path whose only job is to name the exact problem. Tensor entries become :class:`TensorInfo` on
access, so a probe that looks at a dozen keys of a 2,500-tensor header pays for a dozen.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
import os
import re
import stat
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from ..errors import ModelNotFoundError, ModelUnreadableError

__all__ = ["DTYPE_BITS", "MAX_HEADER_BYTES", "FileStamp", "SafetensorsHeader", "TensorInfo", "read_header"]

MAX_HEADER_BYTES = 100 * 1024 * 1024
#: Bits per element of every safetensors dtype; a tensor's span must be exactly prod(shape) * bits / 8 bytes.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Dtype, shape and byte range (relative to the data section) of one tensor."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FileStamp:
    """Identity and version of a file as it was read: device, inode, size, modification time."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        """The stamp of a stat result."""
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Tensors(Mapping[str, TensorInfo]):
    """Read-only view over the parsed JSON entries; each entry is checked when first looked at."""

    __slots__ = ("_entries", "_path")

    def __init__(self, entries: dict[str, Any], path: Path) -> None:
        self._entries = entries
        self._path = path

    def __getitem__(self, key: str) -> TensorInfo:
        return _tensor(self._path, key, self._entries[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """The parsed header of a .safetensors file."""

    path: Path
    size: int
    header_bytes: int
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str]
    #: Header length and a crc32 of its first and last 4 KiB: cheap evidence that two files are the same.
    fingerprint: str = ""
    stamp: FileStamp | None = None
    _names: str = field(default="", repr=False, compare=False)
    _sorted: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self._names:
            object.__setattr__(self, "_names", "\n" + "\n".join(self.tensors) + "\n")

    def shape(self, key: str) -> tuple[int, ...] | None:
        """Shape of tensor ``key``, or None when absent."""
        return self.tensors[key].shape if key in self.tensors else None

    def _sorted_names(self) -> tuple[str, ...]:
        names = self._sorted
        if not names and self.tensors:
            names = tuple(sorted(self.tensors))
            object.__setattr__(self, "_sorted", names)
        return names

    def has_prefix(self, prefix: str) -> bool:
        """Whether any tensor name starts with ``prefix`` (a binary search over the sorted names)."""
        names = self._sorted_names()
        i = bisect.bisect_left(names, prefix)
        return i < len(names) and names[i].startswith(prefix)

    def sample_names(self, head: int = 16384, tail: int = 4096) -> str:
        """The first and last names (``\n``-separated), for markers every module of a file carries."""
        names = self._names
        return names if len(names) <= head + tail else names[:head] + "\n" + names[-tail:]

    def has_suffix(self, suffix: str) -> bool:
        """Whether any tensor name ends with ``suffix``."""
        return (suffix + "\n") in self._names

    def has_part(self, text: str) -> bool:
        """Whether any tensor name contains ``text``."""
        return text in self._names

    def count_suffix(self, suffix: str) -> int:
        """How many tensor names end with ``suffix``."""
        return self._names.count(suffix + "\n")

    def matching(self, pattern: re.Pattern[str]) -> Iterator[str]:
        """Tensor names matched by ``pattern`` (compiled with ``re.M``, anchored with ``^…$``)."""
        return (m.group(0) for m in pattern.finditer(self._names))

    def first(self, prefix: str = "", suffix: str = "", part: str = "") -> str | None:
        """The first tensor name (sorted order with a prefix, else file order) with this prefix, suffix
        and inner part, if any."""
        if prefix:
            names = self._sorted_names()
            for i in range(bisect.bisect_left(names, prefix), len(names)):
                name = names[i]
                if not name.startswith(prefix):
                    return None
                if name.endswith(suffix) and part in name:
                    return name
            return None
        start, names_text = 0, self._names
        needle = part or suffix + "\n"
        while (i := names_text.find(needle, start)) >= 0:
            line_start = names_text.rfind("\n", 0, i + 1) + 1
            line_end = names_text.find("\n", i + 1)
            name = names_text[line_start:line_end]
            if name.endswith(suffix) and part in name:
                return name
            start = line_end
        return None


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _tensor(path: Path, key: str, info: object) -> TensorInfo:
    try:
        start, end = info["data_offsets"]  # type: ignore[index]
        shape, dtype = info["shape"], info["dtype"]  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelUnreadableError(f"{path}: malformed entry for tensor {key!r}.") from exc
    ints = isinstance(shape, list) and all(type(d) is int and d >= 0 for d in [*shape, start, end])
    if not (ints and isinstance(dtype, str)):
        raise ModelUnreadableError(f"{path}: malformed entry for tensor {key!r}.")
    return TensorInfo(dtype, tuple(shape), start, end)


_OFFSETS = itemgetter("data_offsets")


def _check_spans(path: Path, entries: dict[str, Any], data_len: int) -> None:
    """Offsets inside the data section and not overlapping (fast; precise message on failure)."""
    try:
        spans = list(map(_OFFSETS, entries.values()))
        if spans and set(map(len, spans)) == {2}:
            flat = list(chain.from_iterable(spans))
            if set(map(type, flat)) == {int}:  # orjson lets floats through
                # In file order (the usual case) the flattened offsets never decrease; else sort the spans.
                ordered = flat if flat == sorted(flat) else None
                if ordered is None:
                    flat = list(chain.from_iterable(sorted(spans)))
                    ordered = flat if flat == sorted(flat) else None
                if ordered is not None and flat[0] >= 0 and flat[-1] <= data_len:
                    return
        elif not spans:
            return
    except (KeyError, TypeError, ValueError):
        pass
    _explain_spans(path, entries, data_len)


def _explain_spans(path: Path, entries: dict[str, Any], data_len: int) -> None:
    tensors = sorted(((_tensor(path, k, v), k) for k, v in entries.items()), key=lambda t: t[0].start)
    previous: tuple[TensorInfo, str] | None = None
    for tensor, key in tensors:
        if tensor.end > data_len:
            raise ModelUnreadableError(f"{path}: tensor {key!r} lies past the end of the file (truncated?).")
        if tensor.start > tensor.end:
            raise ModelUnreadableError(f"{path}: tensor {key!r} has reversed byte offsets.")
        if previous is not None and tensor.start < previous[0].end:
            raise ModelUnreadableError(f"{path}: tensors {previous[1]!r} and {key!r} overlap in the file.")
        previous = tensor, key


def _check_sizes(path: Path, entries: dict[str, Any]) -> None:
    """Every tensor's span is exactly prod(shape) * dtype size (fast loop; precise message on failure)."""
    if not _sizes_agree(entries):
        _explain_sizes(path, entries)


def _sizes_agree(entries: dict[str, Any]) -> bool:
    """The fast check; False also for a malformed entry, which :func:`_explain_sizes` then names."""
    bits = DTYPE_BITS
    try:
        for info in entries.values():
            start, end = info["data_offsets"]
            n = bits[info["dtype"]]
            for d in info["shape"]:
                n *= d
            if n != (end - start) << 3:
                return False
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _explain_sizes(path: Path, entries: dict[str, Any]) -> None:
    for key, info in entries.items():
        tensor = _tensor(path, key, info)
        if tensor.dtype not in DTYPE_BITS:
            raise ModelUnreadableError(
                f"{path}: tensor {key!r} has unknown dtype {tensor.dtype!r}; not a safetensors file we can load."
            )
        nbits = DTYPE_BITS[tensor.dtype] * math.prod(tensor.shape)
        if nbits != (tensor.end - tensor.start) * 8:
            raise ModelUnreadableError(
                f"{path}: tensor {key!r} has shape {list(tensor.shape)} of {tensor.dtype} ({nbits / 8:g} bytes) "
                f"but spans {tensor.end - tensor.start} bytes in the file; the file is damaged or was not "
                "written by a safetensors writer."
            )


def _parse(path: Path, raw: bytes, data_len: int) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        data = orjson.loads(raw)  # C speed, strict UTF-8 and RFC 8259 (no NaN)
    except orjson.JSONDecodeError as exc:
        raise ModelUnreadableError(
            f"{path}: header is not valid UTF-8 JSON ({exc}); not safetensors."
        ) from exc
    if not isinstance(data, dict):
        raise ModelUnreadableError(f"{path}: header is not a JSON object.")
    meta = data.pop("__metadata__", None)
    # JSON keeps the last of repeated keys silently. Every tensor entry has one "data_offsets" and one
    # "dtype": counting them (C speed) finds a repeated tensor or field; the metadata object is reparsed.
    n = len(data)
    at = raw.find(b'"__metadata__"') if meta is not None else -1
    repeated_meta = meta is not None and raw.find(b'"__metadata__"', at + 1) >= 0
    if raw.count(b'"data_offsets"') != n or raw.count(b'"dtype"') != n or repeated_meta:
        try:
            json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except ValueError as exc:
            raise ModelUnreadableError(f"{path}: header is not valid safetensors JSON ({exc}).") from exc
    elif meta:
        text = raw.decode("utf-8")
        start = (
            raw.index(b":", at) + 1 if raw.isascii() else text.index(":", text.index('"__metadata__"')) + 1
        )
        while text[start] in " \t\r\n":
            start += 1
        try:
            json.JSONDecoder(object_pairs_hook=_no_duplicates).raw_decode(text, start)
        except ValueError as exc:
            raise ModelUnreadableError(f"{path}: header is not valid safetensors JSON ({exc}).") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelUnreadableError(f"{path}: __metadata__ must map strings to strings.")
    _check_spans(path, data, data_len)
    _check_sizes(path, data)
    return data, meta


def _open(p: Path) -> tuple[int, os.stat_result]:
    try:
        before = p.stat()
    except FileNotFoundError:
        raise ModelNotFoundError(f"No model file at {p}.") from None
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    if not stat.S_ISREG(before.st_mode):
        raise ModelUnreadableError(f"{p} is not a regular file.")
    try:
        fd = os.open(p, _FLAGS)
    except FileNotFoundError:
        raise ModelNotFoundError(f"{p} vanished before it could be read.") from None
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise ModelUnreadableError(f"{p} was replaced while it was being opened; scan again.")
    return fd, st


def _read_exactly(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def header_of(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """:func:`read_header`, once per file version (device, inode, size, modification time): every plan
    looks at the same checkpoint's header."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return read_header(p)  # raises the one-line error for a missing or unreadable file
    return _header_of(str(p), FileStamp.of(st))


@functools.lru_cache(maxsize=16)
def _header_of(path: str, stamp: FileStamp) -> SafetensorsHeader:
    del stamp  # the cache key: a rewritten file is read again
    return read_header(path)


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Parse the header of ``path``; raises ModelUnreadableError with the reason when it is malformed."""
    p = Path(path)
    fd, st = _open(p)
    try:
        head = _read_exactly(fd, 8)
        if len(head) < 8:
            raise ModelUnreadableError(f"{p} is too short to be a safetensors file ({st.st_size} bytes).")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES:
            raise ModelUnreadableError(f"{p}: header length {n} is over the 100 MB limit; not safetensors.")
        if 8 + n > st.st_size:
            raise ModelUnreadableError(f"{p}: header length {n} runs past the end of the file (truncated?).")
        raw = _read_exactly(fd, n)
        after = os.fstat(fd)
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    finally:
        os.close(fd)
    if len(raw) < n or (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise ModelUnreadableError(f"{p} changed while its header was being read; scan again.")
    entries, meta = _parse(p, raw, st.st_size - 8 - n)
    return SafetensorsHeader(
        p,
        st.st_size,
        n,
        _Tensors(entries, p),
        meta,
        f"{n:x}-{zlib.crc32(raw[:4096] + raw[-4096:]):08x}",
        FileStamp.of(st),
    )
