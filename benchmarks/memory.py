"""Peak memory and time per memory strategy on CPU, real-size SD 1.5 and SDXL (random weights, fp16 files).

    python benchmarks/memory.py [--families sd1 sdxl] [--strategies none balanced sequential aggressive]
                                [--sd1-size 256] [--sdxl-size 512] [--steps 4]

Each (family, strategy) runs ``ImageGenerator.generate(..., memory=STRATEGY)`` in a fresh process (CFG 7,
Euler, 2 threads) and prints the child's whole-life seconds, its peak RSS (``ru_maxrss`` from
``wait4``), the plan's estimate (``plan.memory.estimated_peak_bytes``) and the estimate's error. The
files are fp16 (as checkpoints ship), so the CPU storage policy keeps them in fp16: SDXL in fp32 would
need 10+ GB and is not run. A case is skipped, with the reason printed, when the RAM available now is
less than its estimate plus 3 GB (the machine must stay below 20 GB in use). On CUDA nothing here runs
(no GPU on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT = "a photograph of an astronaut riding a horse"
HEADROOM = 3 * 10**9


def _child(file: str, strategy: str, size: int, steps: int, plan_only: bool) -> None:
    from ml_lib.diffusion import ImageGenerator, Settings

    home = Path(tempfile.mkdtemp(prefix="ml-diffusion-memory-"))
    kwargs = dict(model=file, width=size, height=size, steps=steps, cfg_scale=7.0, sampler="Euler", seed=1)
    with ImageGenerator(Settings(home=home, model_roots=(), threads=2), device="cpu") as gen:
        plan = gen.plan(PROMPT, memory=strategy, **kwargs)  # type: ignore[arg-type]
        estimate = plan.memory.estimated_peak_bytes if plan.memory is not None else 0
        if not plan_only:
            gen.execute(plan, save=False)
    print(json.dumps({"estimate": estimate, "storage": plan.storage_dtype}))


def _run(args: list[str]) -> tuple[dict[str, object], float, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {args} failed")
    return json.loads(out.strip().splitlines()[-1]), time.perf_counter() - start, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", nargs="*", default=["sd1", "sdxl"])
    parser.add_argument("--strategies", nargs="*", default=["none", "balanced", "sequential", "aggressive"])
    parser.add_argument("--sd1-size", type=int, default=256)
    parser.add_argument("--sdxl-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--child", nargs=3, default=None, metavar=("FILE", "STRATEGY", "SIZE"))
    parser.add_argument("--plan-only", action="store_true")
    parser.add_argument("--build", default=None)
    args = parser.parse_args()
    if args.build:
        from _realsize import checkpoint

        print(json.dumps({"file": str(checkpoint(args.build))}))
        return
    if args.child:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        file, strategy, size = args.child
        _child(file, strategy, int(size), args.steps, args.plan_only)
        return
    import psutil

    print(f"{'case':28} {'seconds':>8} {'peak GB':>8} {'estimate':>9} {'error':>7}")
    for family in args.families:
        size = args.sd1_size if family == "sd1" else args.sdxl_size
        built, _, _ = _run(["--build", family])
        file = str(built["file"])
        for strategy in args.strategies:
            case = f"{family} {size}² {strategy}"
            planned, _, _ = _run(
                ["--child", file, strategy, str(size), "--plan-only", "--steps", str(args.steps)]
            )
            need = int(planned["estimate"])  # type: ignore[call-overload]
            available = psutil.virtual_memory().available
            if need + HEADROOM > available:
                print(
                    f"{case:28} skipped: estimate {need / 1e9:.1f} GB + 3 GB > {available / 1e9:.1f} GB available"
                )
                continue
            _, seconds, peak = _run(["--child", file, strategy, str(size), "--steps", str(args.steps)])
            error = (need - peak) / peak
            print(f"{case:28} {seconds:8.1f} {peak / 1e9:8.2f} {need / 1e9:9.2f} {error:+7.0%}", flush=True)


if __name__ == "__main__":
    main()
