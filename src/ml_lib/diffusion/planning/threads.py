"""CPU thread policy (pure): how many threads torch should use, from the cores, the load and the model size.

Measured on a 2-core machine (``benchmarks/threads.py``): OpenMP threads spin while another process holds
a core, so with a busy neighbour torch's default of one thread per core was ~10x slower than one thread;
idle, two threads help a large UNet (FLOP-bound) and barely matter for a small one. The rule:

- ``free`` = cores minus the cores other processes keep busy (measured just before running, our own use
  excluded); threads = ``free`` rounded half up, at least 1 — never more threads than free cores;
- a small model (under :data:`SMALL_MODEL_PARAMS`) gets one thread whenever any other process is
  measurably busy (its kernels are too short for a second thread to pay for the synchronisation);
- a count the user set wins (clamped to 1..cores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BUSY_THRESHOLD", "SMALL_MODEL_PARAMS", "ThreadChoice", "choose_threads"]

#: Parameters below which a model counts as small (the demo model has ~8 M; SD 1.5's UNet 860 M).
SMALL_MODEL_PARAMS = 100_000_000
#: Cores of other processes' work below which the machine counts as idle.
BUSY_THRESHOLD = 0.25


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    """The thread count for one generation and why."""

    threads: int
    reason: str


def choose_threads(
    cores: int, busy: float, *, params: int | None = None, requested: int | None = None
) -> ThreadChoice:
    """Threads for a CPU generation on ``cores`` cores while other processes keep ``busy`` cores busy.

    ``params``: the model's parameter count when known; ``requested``: the user's count (wins).
    """
    cores = max(1, cores)
    if requested is not None:
        threads = min(max(1, requested), cores)
        return ThreadChoice(threads, f"set by the user ({requested})")
    busy = max(0.0, busy)
    free = cores - busy
    threads = max(1, min(cores, math.floor(free + 0.5)))
    if busy < BUSY_THRESHOLD:
        return ThreadChoice(cores, f"{cores} idle cores")
    if params is not None and params < SMALL_MODEL_PARAMS:
        return ThreadChoice(1, f"a small model while other processes keep {busy:.1f} of {cores} cores busy")
    return ThreadChoice(threads, f"{free:.1f} of {cores} cores free (others keep {busy:.1f} busy)")
