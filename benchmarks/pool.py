"""The model pool: a warm hit against a cold load, and the disk reads of switching between cached models.

    python benchmarks/pool.py [--cold 3] [--warm 200] [--switches 20]

Two models: the built-in demo model and a tiny random SD1 model (written to a temp folder). It prints

- cold load: median seconds of a first request for the demo model in an empty pool (loading from disk);
- warm hit: median seconds of a request for the pooled model (acquire + release: the key, the file
  fingerprint check, the pin, the re-measure of its bytes); target warm ≤ 1% of cold;
- switching: bytes this process read (``/proc/self/io``: ``rchar``, every read call; ``read_bytes``, what
  reached the disk) while alternating requests between the two pooled models; target 0 (reading
  ``/proc/self/io`` itself is measured and subtracted). safetensors maps the weight files instead of
  reading them, so a cold load shows as page faults rather than ``rchar``: the page faults of a cold load
  and of the switching are printed beside them;
- the same through ``ImageGenerator``: the "load" phase of a generation, first (cold) and later (warm).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")


def _io() -> tuple[int, int]:
    """(rchar, read_bytes) of this process so far."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["read_bytes"])


def _faults() -> int:
    """Page faults so far (minor + major): safetensors maps weight files, so reading them shows here, not
    in ``rchar`` (and not in ``read_bytes`` when the page cache already holds them)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt + usage.ru_majflt


def _io_overhead() -> tuple[int, int]:
    """What one ``_io()`` call itself adds (reading the /proc file counts as a read)."""
    a = _io()
    b = _io()
    return b[0] - a[0], b[1] - a[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", type=int, default=3, help="cold loads to time")
    parser.add_argument("--warm", type=int, default=200, help="warm hits to time")
    parser.add_argument("--switches", type=int, default=20, help="alternating requests between two models")
    args = parser.parse_args()

    from ml_lib.diffusion import ImageGenerator, Settings
    from ml_lib.diffusion.engine.pool import PipelinePool
    from ml_lib.diffusion.testing.tiny import write_tiny_model

    root = Path(tempfile.mkdtemp(prefix="ml-diffusion-pool-"))
    gen = ImageGenerator(Settings(home=root / "home", model_roots=()), device="cpu")
    demo = gen.resolve_model("demo")
    tiny = gen.resolve_model(str(write_tiny_model("sd1", root / "models").diffusers_dir))
    kw = dict(dtype="float32", device="cpu")

    cold, cold_read, cold_faults = [], 0, 0
    for _ in range(args.cold):
        pool = PipelinePool()
        io0, f0 = _io(), _faults()
        t = time.perf_counter()
        pool.release(pool.acquire(demo, **kw))
        cold.append(time.perf_counter() - t)
        cold_read, cold_faults = max(cold_read, _io()[0] - io0[0]), max(cold_faults, _faults() - f0)
        pool.clear()

    pool = PipelinePool()
    pool.release(pool.acquire(demo, **kw))
    warm = []
    for _ in range(args.warm):
        t = time.perf_counter()
        pool.release(pool.acquire(demo, **kw))
        warm.append(time.perf_counter() - t)
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)

    pool.release(pool.acquire(tiny, **kw))
    loads = pool.stats().loads
    over = _io_overhead()
    before, f0 = _io(), _faults()
    for i in range(args.switches):
        pool.release(pool.acquire(demo if i % 2 == 0 else tiny, **kw))
    after, switch_faults = _io(), _faults() - f0
    rchar, read_bytes = (after[0] - before[0] - over[0]), (after[1] - before[1] - over[1])
    stats = pool.stats()

    first = gen.generate("a red circle", model="demo", steps=2, seed=1, save=False).timings.load
    later = [
        gen.generate("a red circle", model="demo", steps=2, seed=2 + i, save=False).timings.load
        for i in range(5)
    ]
    gen.close()

    print(f"cold load (demo model, median of {args.cold}):    {cold_s * 1000:9.1f} ms")
    print(f"a cold load (most of {args.cold}): rchar {cold_read / 1e6:.2f} MB, page faults {cold_faults}")
    print(f"warm hit  (median of {args.warm}):                {warm_s * 1000:9.3f} ms")
    print(f"warm / cold:                                  {warm_s / cold_s:9.5f}  (target ≤ 0.01)")
    print(
        f"switching demo <-> tiny, {args.switches} requests:       rchar {rchar} B, read_bytes {read_bytes} B "
        f"(target 0), page faults {switch_faults}, loads during it {stats.loads - loads}"
    )
    print(
        f"pool: hits {stats.hits}, misses {stats.misses}, loads {stats.loads}, evictions {stats.evictions}, "
        f"{stats.ram_bytes / 1e6:.1f} MB RAM held (budget: {pool.budget.describe()})"
    )
    print(
        f"ImageGenerator load phase: first {first * 1000:.1f} ms, later median "
        f"{statistics.median(later) * 1000:.3f} ms (ratio {statistics.median(later) / first:.5f})"
    )


if __name__ == "__main__":
    main()
