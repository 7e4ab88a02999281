"""The CPU thread policy against every fixed thread count, idle and with a busy neighbour, side by side.

    python benchmarks/threads.py [--images 5] [--model demo|PATH]

For each condition (idle; one neighbour process spinning on a core) it generates the same demo image
with torch's thread count fixed at 1..cores, then with the policy (``planning/threads.py``, which measures
the load at each plan), and prints the median seconds per image and the policy's ratio to the best fixed
count. Target: the policy is never more than 10% slower than the best fixed count in either condition.
Run it on an otherwise idle machine: the "idle" row is only as idle as the machine is.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle on the left, light blue background"


def _spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    while not stop.is_set():
        pass


def _seconds(model: str | None, threads: int | None, images: int) -> tuple[float, int]:
    from ml_lib.diffusion import ImageGenerator, Settings

    home = Path(tempfile.mkdtemp(prefix="ml-diffusion-threads-"))
    times, used = [], 0
    with ImageGenerator(Settings(home=home, model_roots=(), threads=threads), device="cpu") as gen:
        gen.generate(PROMPT, model=model, seed=1, save=False)  # warm: load, scheduler
        for i in range(images):
            t = time.perf_counter()
            result = gen.generate(PROMPT, model=model, seed=2 + i, save=False)
            times.append(time.perf_counter() - t)
            used = result.plan.threads
    return statistics.median(times), used


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--model", default=None, help="default: the built-in demo model")
    args = parser.parse_args()
    from ml_lib.diffusion.engine.threads import cpu_cores

    cores = cpu_cores()
    print(f"{cores} cores; median seconds per image over {args.images} images")
    for condition in ("idle", "busy neighbour"):
        stop = multiprocessing.Event()
        neighbour = None
        if condition != "idle":
            neighbour = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
            neighbour.start()
            time.sleep(0.5)
        try:
            fixed = {n: _seconds(args.model, n, args.images)[0] for n in range(1, cores + 1)}
            policy, used = _seconds(args.model, None, args.images)
        finally:
            stop.set()
            if neighbour is not None:
                neighbour.join(timeout=5)
        best = min(fixed.values())
        cells = "  ".join(f"{n} thread{'s' if n > 1 else ''} {s:.2f}s" for n, s in fixed.items())
        print(
            f"{condition:>15}: {cells}  policy ({used}) {policy:.2f}s = {policy / best:.2f}x the best fixed"
        )


if __name__ == "__main__":
    main()
