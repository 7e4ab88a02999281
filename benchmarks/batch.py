"""A batch of N items on the demo model: in-process, then on a local Ray with 1 and 2 actors, in one run.

Run: ``python benchmarks/batch.py [--items 64] [--steps 20] [--cpus 2]``. Prints, per executor: wall
seconds, items per second, model loads, peak RSS of the whole process tree (driver, Ray's own processes
and actors) and the steady-state seconds per item (first to last completion, so actor start-up is apart);
then Ray's overhead per item at one actor against in-process (target ≤ 5% of an item's time). Each actor
gets one CPU thread; in-process runs with one thread too, so the comparison is like for like.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


class TreePeak:
    """Samples the RSS of this process and all its descendants every 50 ms; ``peak`` in bytes."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _job(path: Path, items: int, steps: int) -> Path:
    colours = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"]
    shapes = ["circle", "square", "triangle", "star", "ring"]
    lines = [
        {"prompt": f"a {colours[i % 8]} {shapes[i % 5]} on the left", "model": "demo", "steps": steps}
        for i in range(items)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def _run(name: str, root: Path, job: Path, ray_options: Any) -> dict[str, Any]:
    from ml_lib.diffusion import ImageGenerator, Settings

    done_at: list[float] = []

    def on_event(event: Any) -> None:
        if event.kind == "done":
            done_at.append(time.perf_counter())

    settings = Settings(home=root / f"home-{name}", model_roots=(), threads=1)
    t0 = time.perf_counter()
    with TreePeak() as peak, ImageGenerator(settings) as gen:
        report = gen.batch(job, root / f"out-{name}", seed_start=1, ray=ray_options, on_event=on_event)
    wall = time.perf_counter() - t0
    steady = (done_at[-1] - done_at[0]) / max(1, len(done_at) - 1) * max(1, report.workers)
    return {
        "executor": name,
        "done": report.done,
        "wall_s": wall,
        "items_per_s": report.done / wall,
        "model_loads": report.model_loads,
        "peak_rss_gb": peak.peak / 1e9,
        "s_per_item_steady": steady,  # per actor: what one item costs one worker
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray")
    args = parser.parse_args()

    import ray

    from ml_lib.diffusion.batch import RayOptions

    root = Path(tempfile.mkdtemp(prefix="ml-diffusion-batch-bench-"))
    job = _job(root / "job.jsonl", args.items, args.steps)
    rows = [_run("in-process", root, job, None)]
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        rows.append(_run("ray-1-actor", root, job, RayOptions(actors=1)))
        rows.append(_run("ray-2-actors", root, job, RayOptions(actors=2)))
    finally:
        ray.shutdown()
    print(f"{args.items} items, demo model, {args.steps} steps, 1 thread per worker, {os.cpu_count()} cores")
    print(f"{'executor':<14}{'done':>6}{'wall s':>9}{'items/s':>9}{'loads':>7}{'peak GB':>9}{'s/item':>9}")
    for r in rows:
        print(
            f"{r['executor']:<14}{r['done']:>6}{r['wall_s']:>9.1f}{r['items_per_s']:>9.2f}"
            f"{r['model_loads']:>7}{r['peak_rss_gb']:>9.2f}{r['s_per_item_steady']:>9.2f}"
        )
    local, one = rows[0]["s_per_item_steady"], rows[1]["s_per_item_steady"]
    print(f"Ray overhead per item at one actor: {(one - local) / local:+.1%} of an item's time (target ≤ 5%)")
    print(f"2 actors vs in-process: {rows[2]['items_per_s'] / rows[0]['items_per_s']:.2f}x items per second")


if __name__ == "__main__":
    main()
