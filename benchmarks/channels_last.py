"""Does channels_last speed up our CPU UNet? Real-size SD 1.5 UNet (random weights, fp16 file), as the CPU
policy stores it (fp16, each layer upcast to fp32 for its forward), one forward at 256², batch 2 (CFG).

    python benchmarks/channels_last.py [--rounds 2] [--threads 2] [--size 256]

Each variant runs in its own fresh process, alternating, ``--rounds`` times; printed: the median seconds
of the forward (after one warm-up forward) and the process's peak RSS, and the largest difference between
the two outputs. ``channels_last`` converts the UNet's stored weights and the input to torch's
channels-last memory format (the weights then live in ordinary memory, no longer in the file's pages).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(variant: str, size: int, threads: int, out: str) -> None:
    import numpy as np
    import torch
    from _realsize import checkpoint

    from ml_lib.diffusion.engine.loading import load_pipeline
    from ml_lib.diffusion.engine.storage import apply_storage
    from ml_lib.diffusion.resolve.checkpoint import resolve_model

    torch.set_num_threads(threads)
    pipe = load_pipeline(resolve_model(str(checkpoint("sd1"))), dtype="float16", device="cpu")
    apply_storage(pipe, "float16", "float32")
    unet = pipe.unet
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, size // 8, size // 8, generator=g)
    text = torch.randn(2, 77, 768, generator=g)
    if variant == "channels_last":
        unet.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        unet(x, 500, text)  # warm-up
        start = time.perf_counter()
        y = unet(x, 500, text).sample
        seconds = time.perf_counter() - start
    np.save(out, y.contiguous().numpy())
    print(json.dumps({"seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--child", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _child(args.child, args.size, args.threads, args.out)
        return
    import numpy as np

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    work = Path(tempfile.mkdtemp(prefix="ml-diffusion-cl-"))
    found: dict[str, list[tuple[float, int]]] = {"contiguous": [], "channels_last": []}
    for r in range(args.rounds):
        for variant in found:
            cmd = [sys.executable, __file__, "--child", variant, "--out", str(work / f"{variant}.npy")]
            cmd += ["--size", str(args.size), "--threads", str(args.threads)]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            line = proc.stdout.read().strip().splitlines()[-1]
            _, status, usage = os.wait4(proc.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{variant} failed")
            seconds = float(json.loads(line)["seconds"])
            found[variant].append((seconds, usage.ru_maxrss * 1024))
            print(f"round {r + 1} {variant:14} {seconds:6.2f} s  peak RSS {usage.ru_maxrss / 1e6:5.2f} GB")
    a, b = (np.load(work / f"{v}.npy") for v in found)
    med = {v: statistics.median(s for s, _ in f) for v, f in found.items()}
    print(
        json.dumps(
            {
                "contiguous_s": round(med["contiguous"], 2),
                "channels_last_s": round(med["channels_last"], 2),
                "ratio": round(med["channels_last"] / med["contiguous"], 3),
                "max_abs_diff": float(np.abs(a - b).max()),
            }
        )
    )


if __name__ == "__main__":
    main()
