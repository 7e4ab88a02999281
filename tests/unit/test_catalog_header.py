"""Bad safetensors headers: each is refused with a reason; the fast path agrees with the slow one."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog import header
from ml_lib.diffusion.catalog.header import read_header
from ml_lib.diffusion.errors import ModelUnreadableError
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters


def _file(path: Path, head: dict[str, object] | bytes, data: int = 64) -> Path:
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data)
    return path


def _t(start: int, end: int, shape: list[int] | None = None) -> dict[str, object]:
    return {"dtype": "U8", "shape": shape or [end - start], "data_offsets": [start, end]}


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({"a": _t(0, 32), "b": _t(16, 48)}, "overlap"),
        ({"a": _t(0, 32), "b": _t(32, 128)}, "past the end"),
        ({"a": _t(8, 4, [4])}, "reversed byte offsets"),
        (b'{"a": {"dtype": "U8", "dtype": "F16", "shape": [4], "data_offsets": [0, 4]}}', "duplicate key"),
        (
            b'{"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}, "a": {"dtype": "U8", "shape": [4], '
            b'"data_offsets": [4, 8]}}',
            "duplicate key",
        ),
        (
            b'{"__metadata__": {"k": "1", "k": "2"}, "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}',
            "duplicate key",
        ),
        ({"__metadata__": {"k": ["list"]}}, "strings to strings"),
        ({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0.5, 4]}}, "malformed entry"),
        ({"a": {"dtype": "U8", "shape": [4], "data_offsets": ["0", "4"]}}, "malformed entry"),
        ({"a": {"dtype": "U8", "shape": [4]}}, "malformed entry"),
        ({"a": [1, 2]}, "malformed entry"),
        (b'{"a": NaN}', "not valid UTF-8 JSON"),
        (b"\xc3\x28{}", "not valid UTF-8 JSON"),
    ],
)
def test_bad_headers(tmp_path: Path, head: dict[str, object] | bytes, message: str) -> None:
    with pytest.raises(ModelUnreadableError, match=message):
        read_header(_file(tmp_path / "bad.safetensors", head))


def test_a_malformed_shape_is_refused_when_the_header_is_read(tmp_path: Path) -> None:
    path = _file(
        tmp_path / "shape.safetensors", {"a": {"dtype": "U8", "shape": ["x"], "data_offsets": [0, 4]}}
    )
    with pytest.raises(ModelUnreadableError, match="malformed entry"):
        read_header(path)


def test_lazy_entries_are_checked_on_access(tmp_path: Path) -> None:
    path = _file(
        tmp_path / "shape.safetensors", {"a": {"dtype": "U8", "shape": [2, 2.0], "data_offsets": [0, 4]}}
    )
    h = read_header(path)
    with pytest.raises(ModelUnreadableError, match="malformed entry"):
        h.tensors["a"]


def test_names_that_look_like_keys_take_the_slow_path(tmp_path: Path) -> None:
    head = {"data_offsets": _t(0, 4), "dtype": _t(4, 8), "__metadata__": {"note": '"shape"'}}
    h = read_header(_file(tmp_path / "odd.safetensors", head))
    assert set(h.tensors) == {"data_offsets", "dtype"} and h.metadata["note"] == '"shape"'


def test_prefix_helpers_and_fingerprint(tmp_path: Path) -> None:
    path = fakes.write_fake_safetensors(tmp_path / "l.safetensors", adapters.lora_keys("sd1"))
    h = read_header(path)
    assert h.has_prefix("lora_unet_down_blocks_") and not h.has_prefix("unet.")
    assert h.has_suffix(".lora_down.weight") and h.count_suffix(".alpha") == len(h.tensors) // 3
    assert h.first(prefix="lora_te_", suffix=".lora_down.weight") == min(
        k for k in h.tensors if k.startswith("lora_te_") and k.endswith(".lora_down.weight")
    )
    assert h.first(suffix=".alpha") == next(k for k in h.tensors if k.endswith(".alpha"))
    assert h.first(prefix="nope") is None and not h.has_prefix("lora_unet_zzz")
    assert h.fingerprint == read_header(path).fingerprint and h.stamp is not None
    other = fakes.write_fake_safetensors(tmp_path / "o.safetensors", adapters.lora_keys("sd1", rank=4))
    assert read_header(other).fingerprint != h.fingerprint


def test_file_changing_while_read_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fakes.write_fake_safetensors(tmp_path / "grow.safetensors", adapters.lora_keys("sd1"))
    real_fstat = os.fstat
    calls = []

    def fstat(fd: int) -> os.stat_result:
        calls.append(fd)
        if len(calls) == 2:  # after the header was read: another process appends to the file
            with path.open("ab") as fh:
                fh.write(b"\0" * 16)
        return real_fstat(fd)

    monkeypatch.setattr(header.os, "fstat", fstat)
    with pytest.raises(ModelUnreadableError, match="changed while its header was being read"):
        read_header(path)


def test_permission_error_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fakes.write_fake_safetensors(tmp_path / "locked.safetensors", adapters.embedding_keys())

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(header.os, "open", denied)
    with pytest.raises(ModelUnreadableError, match="Permission denied"):
        read_header(path)


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(ModelUnreadableError, match="not a regular file"):
        read_header(fifo)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 16]},
            r"\[4, 4\] of F16 \(32 bytes\) but spans 16",
        ),
        ({"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}, r"\(12 bytes\) but spans 16"),
        ({"dtype": "U8", "shape": [], "data_offsets": [0, 2]}, r"\(1 bytes\) but spans 2"),
        ({"dtype": "U8", "shape": [0, 7], "data_offsets": [0, 1]}, r"\(0 bytes\) but spans 1"),
        ({"dtype": "Q4_K", "shape": [4], "data_offsets": [0, 4]}, "unknown dtype 'Q4_K'"),
    ],
)
def test_shapes_must_fill_their_byte_ranges(tmp_path: Path, entry: dict[str, object], message: str) -> None:
    head = {"ok": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}, "bad": entry}
    entry["data_offsets"] = [8 + o for o in entry["data_offsets"]]  # type: ignore[union-attr]
    with pytest.raises(ModelUnreadableError, match=message):
        read_header(_file(tmp_path / "lying.safetensors", head))


@pytest.mark.parametrize(
    ("dtype", "shape", "nbytes"),
    [
        ("F16", [3, 5], 30),
        ("BOOL", [7], 7),
        ("F64", [2], 16),
        ("F8_E4M3", [9], 9),
        ("F4", [6], 3),
        ("U8", [], 1),
    ],
)
def test_consistent_shapes_of_every_dtype_pass(
    tmp_path: Path, dtype: str, shape: list[int], nbytes: int
) -> None:
    h = read_header(
        _file(
            tmp_path / "ok.safetensors", {"t": {"dtype": dtype, "shape": shape, "data_offsets": [0, nbytes]}}
        )
    )
    assert h.tensors["t"].end == nbytes


def test_a_checkpoint_whose_shapes_lie_is_catalogued_broken(tmp_path: Path) -> None:
    from ml_lib.diffusion.catalog.catalog import Catalog
    from ml_lib.diffusion.catalog.records import Status
    from ml_lib.diffusion.db import connect

    root = tmp_path / "models" / "Stable-diffusion"
    keys = fakes.checkpoint_keys("sd1")
    fakes.write_fake_safetensors(root / "good.safetensors", keys)
    head: dict[str, object] = {}
    offset = 0
    for i, (name, (dtype, shape)) in enumerate(keys.items()):
        size = 2 * math.prod(shape)  # F16
        claimed = (
            [d * 2 for d in shape] if i == 0 else list(shape)
        )  # the first tensor claims more than it spans
        head[name] = {"dtype": dtype, "shape": claimed, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(head).encode()
    with (root / "lying.safetensors").open("wb") as fh:  # sparse, like the fakes
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    catalog = Catalog(connect(tmp_path / "db.sqlite3"), [tmp_path / "models"])
    catalog.scan()
    found = {Path(r.path).name: r for r in catalog.find(statuses=tuple(Status))}
    assert found["good.safetensors"].status is Status.OK
    lying = found["lying.safetensors"]
    assert lying.status is Status.BROKEN and "spans" in lying.info.reason
