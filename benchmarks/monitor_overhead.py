"""What measuring peak memory per phase costs a generation: the RSS sampler on against off, side by side.

    python benchmarks/monitor_overhead.py [--images 8] [--model demo|PATH]

One process, one pooled pipeline; images alternate between the sampler running (every 20 ms, as in every
generation) and the sampler thread idle (``PhaseMonitor._sample`` replaced by a wait), so both arms see the
same machine load. Prints the median wall and CPU seconds per image of each arm, their ratio, and what a
full garbage collection (the cleanup after a failed or cancelled generation) costs in this process.
Target: sampler on / off ≤ 1.02 in wall time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle on the left, light blue background"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images per arm")
    parser.add_argument("--model", default=None, help="a model path (default: the built-in demo)")
    args = parser.parse_args()

    from ml_lib.diffusion import ImageGenerator, Settings
    from ml_lib.diffusion.engine import peaks

    sample = peaks.PhaseMonitor._sample

    def idle(self: peaks.PhaseMonitor) -> None:
        self._stop.wait()

    home = Path(tempfile.mkdtemp(prefix="ml-diffusion-monitor-"))
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    with ImageGenerator(Settings(home=home, model_roots=(), threads=1), device="cpu") as gen:
        gen.generate(PROMPT, model=args.model, seed=1, save=False)  # warm: load, scheduler
        for i in range(2 * args.images):
            on = i % 2 == 0
            peaks.PhaseMonitor._sample = sample if on else idle  # type: ignore[method-assign]
            t, c = time.perf_counter(), time.process_time()
            gen.generate(PROMPT, model=args.model, seed=2 + i // 2, save=False)
            wall[on].append(time.perf_counter() - t)
            cpu[on].append(time.process_time() - c)
        peaks.PhaseMonitor._sample = sample  # type: ignore[method-assign]
        t = time.perf_counter()
        gc.collect()
        full_gc = time.perf_counter() - t
    for on in (True, False):
        print(
            f"sampler {'on ' if on else 'off'}: median {statistics.median(wall[on]):.3f} s wall, "
            f"{statistics.median(cpu[on]):.3f} s CPU per image ({args.images} images)"
        )
    ratio = statistics.median(wall[True]) / statistics.median(wall[False])
    cpu_ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
    print(f"on / off: {ratio:.3f} wall, {cpu_ratio:.3f} CPU (target ≤ 1.02 wall)")
    print(f"a full gc.collect() in this process: {full_gc:.2f} s (after failures and cancels only)")


if __name__ == "__main__":
    main()
