"""The pipeline pool's LRU under a byte budget, pins, single-flight loading, failed loads, stale files and
stats, on tiny torch modules standing in for pipelines (a loader that counts its calls)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ml_lib.diffusion.engine.pool import PipelinePool
from ml_lib.diffusion.plan import ModelFormat, ModelRef
from ml_lib.diffusion.planning.pool_budget import PoolBudget

MB = 10**6


class CountingLoader:
    """Builds an fp32 Linear of ``sizes[name]`` MB per model; counts calls; can block or fail on demand."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.calls: list[str] = []
        self.entered = threading.Event()
        self.gate: threading.Event | None = None
        self.fail: Exception | None = None

    def __call__(self, model: ModelRef, dtype: str, device: str, memory: str, storage: str | None) -> Any:
        self.calls.append(model.name)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        if self.fail is not None:
            raise self.fail
        return torch.nn.Linear(self.sizes[model.name] * MB // 4, 1, bias=False)  # size MB of fp32 weights


def _model(folder: Path, name: str) -> ModelRef:
    path = folder / f"{name}.safetensors"
    if not path.exists():
        path.write_bytes(b"x" * 16)
    return ModelRef(str(path), ModelFormat.SINGLE_FILE, "sd1", name=name)


def _pool(loader: CountingLoader, ram_mb: int | None, **kw: Any) -> PipelinePool:
    return PipelinePool(budget=PoolBudget(ram=ram_mb * MB if ram_mb else None), loader=loader, **kw)


def _get(pool: PipelinePool, model: ModelRef) -> Any:
    return pool.get(model, dtype="float32", device="cpu").pipe


def test_evicts_least_recently_used_until_the_new_model_fits(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 4, "b": 4, "c": 4, "d": 8})
    pool = _pool(loader, ram_mb=10)
    a, b, c, d = (_model(tmp_path, n) for n in "abcd")
    first_a = _get(pool, a)
    _get(pool, b)
    assert _get(pool, a) is first_a  # a used last: b is now the least recently used
    _get(pool, c)  # 4 + 4 + 4 > 10: b goes, a stays
    assert loader.calls == ["a", "b", "c"]
    assert _get(pool, a) is first_a and loader.calls == ["a", "b", "c"]
    _get(pool, b)  # reloaded; c (least recently used now) goes
    assert loader.calls == ["a", "b", "c", "b"]
    _get(pool, d)  # 8 MB: both a and b must go
    s = pool.stats()
    assert (s.models, s.evictions, s.ram_bytes) == (1, 4, 8 * MB)
    assert loader.calls[-1] == "d"


def test_the_planned_size_makes_room_before_the_load(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 6, "b": 6})
    pool = _pool(loader, ram_mb=10)
    a, b = _model(tmp_path, "a"), _model(tmp_path, "b")
    _get(pool, a)
    seen: list[int] = []
    loader.gate = threading.Event()
    loader.gate.set()
    original = loader.__call__

    def watching(model: ModelRef, dtype: str, device: str, memory: str, storage: str | None) -> Any:
        seen.append(pool.stats().models)  # what the pool holds while b loads
        return original(model, dtype, device, memory, storage)

    pool._loader = watching
    pool.release(pool.acquire(b, dtype="float32", device="cpu", expected=(6 * MB, 0)))
    assert seen == [0]  # a was evicted before b loaded, not after


def test_a_model_larger_than_the_budget_loads_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    loader = CountingLoader({"small": 2, "huge": 20})
    pool = _pool(loader, ram_mb=10)
    _get(pool, _model(tmp_path, "small"))
    with caplog.at_level("WARNING"):
        pipe = pool.acquire(_model(tmp_path, "huge"), dtype="float32", device="cpu", expected=(20 * MB, 0))
    assert isinstance(pipe.pipe, torch.nn.Linear)
    assert "larger than the whole budget" in caplog.text
    pool.release(pipe)
    s = pool.stats()
    assert (s.models, s.over_budget, s.ram_bytes) == (1, 1, 20 * MB)


def test_a_pinned_model_is_never_evicted(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 6, "b": 6, "c": 6})
    pool = _pool(loader, ram_mb=10)
    a, b, c = (_model(tmp_path, n) for n in "abc")
    held = pool.acquire(a, dtype="float32", device="cpu")
    other = threading.Thread(target=lambda: _get(pool, b))  # another thread wants another model
    other.start()
    other.join(timeout=30)
    assert pool.stats().models == 2 and pool.stats().pinned == 1  # over budget rather than evicting a
    _get(pool, c)  # b (unpinned, least recently used after a) goes; a stays
    assert pool.acquire(a, dtype="float32", device="cpu") is held and loader.calls == ["a", "b", "c"]
    pool.release(held)
    pool.release(held)
    _get(pool, b)  # a is free now: evicted to make room
    assert loader.calls == ["a", "b", "c", "b"] and pool.stats().models == 1


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _wait_for_waiter(pool: PipelinePool) -> None:
    """Until the second request has joined the load in flight (it counts as a hit when it joins)."""
    joined = threading.Event()
    for _ in range(3000):
        if pool.stats().hits == 1:
            joined.set()
            break
        joined.wait(0.01)
    assert joined.is_set(), "the second request never joined the load"


def test_two_threads_asking_for_one_model_load_it_once(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 1})
    loader.gate = threading.Event()
    pool = _pool(loader, ram_mb=None)
    a = _model(tmp_path, "a")
    first, one = _in_thread(lambda: pool.acquire(a, dtype="float32", device="cpu"))
    assert loader.entered.wait(timeout=30)
    second, two = _in_thread(lambda: pool.acquire(a, dtype="float32", device="cpu"))
    _wait_for_waiter(pool)
    loader.gate.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert loader.calls == ["a"] and one["value"] is two["value"]
    s = pool.stats()
    assert (s.loads, s.misses, s.hits, s.pinned) == (1, 1, 1, 1)
    pool.release(one["value"])
    pool.release(two["value"])
    assert pool.stats().pinned == 0


def test_a_failed_load_is_not_cached_and_the_waiter_gets_the_error(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 1})
    loader.gate, loader.fail = threading.Event(), OSError("truncated file")
    pool = _pool(loader, ram_mb=None)
    a = _model(tmp_path, "a")
    first, one = _in_thread(lambda: pool.acquire(a, dtype="float32", device="cpu"))
    assert loader.entered.wait(timeout=30)
    second, two = _in_thread(lambda: pool.acquire(a, dtype="float32", device="cpu"))
    _wait_for_waiter(pool)
    loader.gate.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert isinstance(one["error"], OSError) and two["error"] is one["error"]
    assert pool.stats().failed_loads == 1 and len(pool) == 0
    loader.fail = None
    assert isinstance(_get(pool, a), torch.nn.Linear) and loader.calls == ["a", "a"]  # tried again


def test_a_file_changed_on_disk_is_reloaded(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 1})
    pool = _pool(loader, ram_mb=None)
    a = _model(tmp_path, "a")
    old = _get(pool, a)
    assert _get(pool, a) is old
    path = Path(a.reference)
    stat = path.stat()
    path.write_bytes(b"y" * 16)  # same size; a write changes the times
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime put back
    fresh = _get(pool, a)
    assert fresh is not old and loader.calls == ["a", "a"]
    s = pool.stats()
    assert (s.stale, s.models, s.ram_bytes) == (1, 1, 1 * MB)


def test_stats_count_hits_misses_and_bytes(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 2, "b": 3})
    pool = _pool(loader, ram_mb=100, capacity=None)
    a, b = _model(tmp_path, "a"), _model(tmp_path, "b")
    for model in (a, a, b, a, b):
        _get(pool, model)
    s = pool.stats()
    assert (s.hits, s.misses, s.loads, s.evictions, s.models) == (3, 2, 2, 0, 2)
    assert (s.ram_bytes, s.vram_bytes, s.ram_budget) == (5 * MB, 0, 100 * MB)
    counted = PipelinePool(capacity=1, loader=loader)  # the count bound still holds without a budget
    _get(counted, a)
    _get(counted, b)
    assert counted.stats().evictions == 1 and len(counted) == 1


def test_a_dropped_model_in_use_is_freed_when_released(tmp_path: Path) -> None:
    loader = CountingLoader({"a": 2})
    pool = _pool(loader, ram_mb=None)
    a = _model(tmp_path, "a")
    with pool.lease(a, dtype="float32", device="cpu") as loaded:
        assert pool.stats().pinned == 1
        pool.drop(loaded)  # e.g. after an out-of-memory: no new request gets it …
        s = pool.stats()
        assert (s.models, s.pinned, s.ram_bytes) == (0, 1, 2 * MB)  # … but it is held until released
    s = pool.stats()
    assert (s.models, s.pinned, s.ram_bytes) == (0, 0, 0)
    assert _get(pool, a) is not loaded.pipe and loader.calls == ["a", "a"]
