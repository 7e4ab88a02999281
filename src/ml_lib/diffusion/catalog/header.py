"""Read a safetensors header (tensor names, dtypes, shapes, metadata) without touching tensor data."""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..errors import ModelNotFoundError, ModelUnreadableError

__all__ = ["MAX_HEADER_BYTES", "SafetensorsHeader", "TensorInfo", "read_header"]

MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """Dtype, shape and byte range of one tensor."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """The parsed header of a .safetensors file."""

    path: Path
    size: int
    header_bytes: int
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str]

    def shape(self, key: str) -> tuple[int, ...] | None:
        """Shape of tensor ``key``, or None when absent."""
        info = self.tensors.get(key)
        return info.shape if info else None

    def has_prefix(self, prefix: str) -> bool:
        """Whether any tensor name starts with ``prefix``."""
        return any(k.startswith(prefix) for k in self.tensors)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """Parse the header of ``path``; raises ModelUnreadableError with the reason when it is malformed."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ModelNotFoundError(f"No model file at {p}.") from None
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ModelUnreadableError(f"{p} is not a regular file.")
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelUnreadableError(f"{p} is too short to be a safetensors file ({st.st_size} bytes).")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise ModelUnreadableError(
                    f"{p}: header length {n} is over the 100 MB limit; not safetensors."
                )
            if 8 + n > st.st_size:
                raise ModelUnreadableError(
                    f"{p}: header length {n} runs past the end of the file (truncated?)."
                )
            raw = fh.read(n)
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelUnreadableError(f"{p}: header is not valid UTF-8 JSON ({exc}); not safetensors.") from exc
    if not isinstance(data, dict):
        raise ModelUnreadableError(f"{p}: header is not a JSON object.")
    meta_raw = data.pop("__metadata__", None) or {}
    if not isinstance(meta_raw, dict) or not all(isinstance(v, str) for v in meta_raw.values()):
        raise ModelUnreadableError(f"{p}: __metadata__ must map strings to strings.")
    data_len = st.st_size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for key, info in data.items():
        try:
            start, end = (int(x) for x in info["data_offsets"])
            tensor = TensorInfo(str(info["dtype"]), tuple(int(d) for d in info["shape"]), start, end)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnreadableError(f"{p}: malformed entry for tensor {key!r}.") from exc
        if not 0 <= start <= end <= data_len:
            raise ModelUnreadableError(f"{p}: tensor {key!r} lies past the end of the file (truncated?).")
        tensors[key] = tensor
    return SafetensorsHeader(p, st.st_size, n, MappingProxyType(tensors), MappingProxyType(dict(meta_raw)))
