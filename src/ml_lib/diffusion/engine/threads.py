"""The CPU side of the thread policy: the cores this process may use, how busy other processes keep them
(measured for each plan), and applying a plan's thread count to torch (process-wide)."""

from __future__ import annotations

import logging
import os
import time

import torch

__all__ = ["busy_cores", "cpu_cores", "use_threads"]

log = logging.getLogger(__name__)

_SAMPLE_SECONDS = 0.03


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def busy_cores(seconds: float = _SAMPLE_SECONDS) -> float:
    """How many cores other processes kept busy over a short sample (this process's own use excluded)."""
    import psutil

    me = psutil.Process()
    before, mine_before, t0 = psutil.cpu_times(), me.cpu_times(), time.perf_counter()
    time.sleep(seconds)
    after, mine_after, wall = psutil.cpu_times(), me.cpu_times(), time.perf_counter() - t0
    idle = ("idle", "iowait")
    total = sum(after) - sum(before)
    if total <= 0 or wall <= 0:
        return 0.0
    busy_share = 1.0 - sum(getattr(after, f, 0.0) - getattr(before, f, 0.0) for f in idle) / total
    ours = (mine_after.user + mine_after.system - mine_before.user - mine_before.system) / wall
    return max(0.0, busy_share * (psutil.cpu_count() or 1) - ours)


def use_threads(threads: int) -> None:
    """Make torch compute with ``threads`` CPU threads (0: leave torch's setting alone)."""
    if threads > 0 and torch.get_num_threads() != threads:
        log.info("CPU threads: %d", threads)
        torch.set_num_threads(threads)
