"""Memory-mapped weight pages handed back to the OS after a phase (engine/pages.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ml_lib.diffusion.engine.pages import file_mappings, release_pages

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pagemap and madvise are Linux interfaces")

_MB = 1 << 20


def _resident(t: torch.Tensor) -> int:
    """Bytes of ``t`` resident in this process (mincore would count the page cache; pagemap counts us)."""
    import mmap
    import os
    import struct

    page = mmap.PAGESIZE
    lo = -(-t.data_ptr() // page) * page
    hi = (t.data_ptr() + t.numel() * t.element_size()) // page * page
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        data = os.pread(fd, (hi - lo) // page * 8, lo // page * 8)
    finally:
        os.close(fd)
    return sum(page for (e,) in struct.iter_unpack("<Q", data) if e & (1 << 63))


def _mapped_module(tmp_path: Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    weights = {
        "a.weight": torch.randn(512, 1024, generator=gen).half(),
        "b.weight": torch.randn(512, 1024, generator=gen).half(),
    }
    path = tmp_path / "w.safetensors"
    save_file(weights, str(path))
    module = torch.nn.Module()
    for key, value in load_file(str(path)).items():
        module.register_parameter(key.split(".")[0], torch.nn.Parameter(value, requires_grad=False))
    return module, weights


def test_weights_loaded_from_safetensors_are_file_mapped(tmp_path: Path) -> None:
    module, _ = _mapped_module(tmp_path)
    ptr = module.a.data_ptr()
    assert any(m.start <= ptr < m.end and m.path.endswith("w.safetensors") for m in file_mappings())


def test_read_pages_are_dropped_and_come_back_identical(tmp_path: Path) -> None:
    module, weights = _mapped_module(tmp_path)
    total = float(module.a.float().sum() + module.b.float().sum())  # read: every page resident
    assert _resident(module.a) > 0.9 * _MB
    dropped = release_pages(module)
    assert dropped > 1.8 * _MB  # both 1 MiB tensors, less the pages shared with the header
    assert _resident(module.a) == 0
    assert torch.equal(module.a, weights["a.weight"]) and torch.equal(module.b, weights["b.weight"])
    assert float(module.a.float().sum() + module.b.float().sum()) == total


def test_pages_written_in_place_are_kept(tmp_path: Path) -> None:
    """A LoRA fused into the stored weights writes private copies of the pages: dropping those would undo it."""
    module, weights = _mapped_module(tmp_path)
    with torch.no_grad():
        module.a.add_(1.0)
    _ = module.b.float().sum()
    dropped = release_pages(module)
    assert _resident(module.a) > 0.9 * _MB  # written: anonymous copies, not dropped
    assert _resident(module.b) == 0 and dropped < 1.1 * _MB
    assert torch.equal(module.a, weights["a.weight"] + 1.0)


def test_anonymous_memory_is_never_touched() -> None:
    layer = torch.nn.Linear(1024, 1024)
    before = layer.weight.detach().clone()
    assert release_pages(layer, None) == 0
    assert torch.equal(layer.weight, before)
