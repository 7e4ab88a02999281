"""While a UNet denoises on stored weights, large blocks go straight back to the OS (engine/pages.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine import pages
from ml_lib.diffusion.testing.export import save_single_file, write_config_folder
from ml_lib.diffusion.testing.tiny import tiny_sd1_components

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


_CHECK = """
import torch
from ml_lib.diffusion.engine import pages

def mapping_of(ptr):
    for line in open("/proc/self/maps"):
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if lo <= ptr < hi:
            return fields[5] if len(fields) > 5 else ""
    raise AssertionError(hex(ptr))

def anon_rss():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("RssAnon:"))

n = 24 * 2**20 // 4  # 24 MB of fp32: above the prompt threshold, below glibc's dynamic ceiling
assert pages.set_mmap_threshold(pages.CEILING_THRESHOLD)  # where a generation leaves it
outside = torch.ones(n)
assert mapping_of(outside.data_ptr()) == "[heap]", "the ceiling serves it from the heap"
del outside
with pages.prompt_returns(True):
    before = anon_rss()
    inside = torch.ones(n)
    assert mapping_of(inside.data_ptr()) != "[heap]", "inside: a mapping of its own"
    assert anon_rss() - before > 20 * 2**20
    del inside
    assert anon_rss() - before < 2 * 2**20, "unmapped on free, not kept for reuse"
print("ok")
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_inside_the_block_a_freed_large_tensor_goes_back_to_the_os_at_once() -> None:
    # In a fresh process: the heap of a long test session is in no known state.
    done = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_executor_applies_it_to_the_denoise_of_stored_weights_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(pages, "set_mmap_threshold", lambda n: calls.append(n) or True)
    pipe = tiny_sd1_components(0)
    files = {}
    for dtype in (torch.float16, torch.float32):
        name = "tiny16" if dtype == torch.float16 else "tiny32"
        files[dtype] = save_single_file(pipe, tmp_path / f"{name}.safetensors", dtype=dtype)
        write_config_folder(pipe, tmp_path / f"{name}.config")
    settings = Settings(home=tmp_path / "home", model_roots=(), threads=1)
    with ImageGenerator(settings, device="cpu") as gen:
        stored = gen.plan("a red ball", model=str(files[torch.float16]), width=64, height=64, steps=2, seed=1)
        assert stored.storage_dtype == "float16"
        gen.execute(stored, save=False)
        assert calls == [pages.PROMPT_THRESHOLD, pages.CEILING_THRESHOLD]
        calls.clear()
        full = gen.plan("a red ball", model=str(files[torch.float32]), width=64, height=64, steps=2, seed=1)
        assert full.storage_dtype is None
        gen.execute(full, save=False)
        assert calls == []
