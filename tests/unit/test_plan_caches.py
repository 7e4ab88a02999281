"""What plans re-use between calls: the checkpoint header per file version, records decoded by compiled
converters (same objects, same errors), the path map kept with the LoRA index."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from ml_lib.diffusion._codec import from_jsonable, to_jsonable
from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.header import header_of
from ml_lib.diffusion.catalog.records import ModelRecord
from ml_lib.diffusion.errors import ModelNotFoundError, ModelUnreadableError, PlanError
from ml_lib.diffusion.plan import GenerationPlan
from ml_lib.diffusion.planning.lora_cache import IndexCache
from ml_lib.diffusion.testing.records import lora_record


def _write(path: Path, meta: dict[str, str]) -> Path:
    raw = json.dumps({"__metadata__": meta, "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}})
    path.write_bytes(struct.pack("<Q", len(raw)) + raw.encode() + b"\0" * 4)
    return path


def test_header_is_read_once_per_file_version(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.safetensors", {"k": "1"})
    first = header_of(path)
    assert header_of(path) is first  # unchanged file: the same parsed header
    _write(path, {"k": "22"})  # rewritten (another size): read again
    os.utime(path, ns=(1, 1))
    again = header_of(path)
    assert again is not first and again.metadata["k"] == "22"
    with pytest.raises((ModelUnreadableError, ModelNotFoundError)):
        header_of(tmp_path / "missing.safetensors")


def test_records_decode_to_equal_objects_and_ignore_unknown_keys() -> None:
    record = lora_record("x_xl", Family.SDXL, triggers=("a b",), tags=(("t", 3),), civitai_tags=("style",))
    data = to_jsonable(record)
    assert ModelRecord.from_json(json.dumps(data)) == record
    data["from_a_newer_version"] = {"anything": [1]}
    assert ModelRecord.from_json(json.dumps(data)) == record  # stored records: lenient


def test_strict_decoding_names_the_field_at_fault() -> None:
    with pytest.raises(PlanError, match="Unknown field"):
        from_jsonable(GenerationPlan, {"nope": 1}, error=PlanError, strict=True)
    with pytest.raises(PlanError, match=r"Missing field GenerationPlan\.\w+"):
        from_jsonable(GenerationPlan, {}, error=PlanError, strict=True)
    data = to_jsonable(lora_record("x_xl"))
    data["info"]["lora"]["top_tags"] = [{"tag": "a", "count": "many"}]
    with pytest.raises(PlanError, match=r"^ModelRecord\.info\.lora\.top_tags\[\]\.count must be int"):
        from_jsonable(ModelRecord, data, error=PlanError, strict=True)


def test_index_cache_keeps_the_path_map_of_the_same_records() -> None:
    cache = IndexCache()
    records = (lora_record("a_xl"), lora_record("b_xl"))
    by_path = cache.by_path(records)
    assert by_path == {r.path: r for r in records}
    assert cache.by_path(records) is by_path and cache.builds == 1
    other = (*records, lora_record("c_xl"))
    assert len(cache.by_path(other)) == 3 and cache.builds == 2
