"""Our generate() against a raw diffusers pipeline call: same components, same settings, interleaved.

Run: ``python benchmarks/overhead.py [--rounds 15] [--steps 20]``. Prints the median seconds of each and
the median of the per-round ratios (target ≤ 1.02 at 20 tiny steps; file writing excluded).
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionPipeline

    from ml_lib.diffusion import ImageGenerator, Settings
    from ml_lib.diffusion.testing.tiny import write_tiny_model

    root = Path(tempfile.mkdtemp(prefix="ml-diffusion-bench-"))
    files = write_tiny_model("sd1", root / "models")
    settings = dict(width=args.size, height=args.size, steps=args.steps, cfg_scale=7.0, sampler="Euler")
    gen = ImageGenerator(Settings(home=root / "home"), device="cpu")
    plan = gen.plan("a red circle on the left", negative_prompt="blurry", model=str(files.diffusers_dir),
                    seed=1, **settings)  # fmt: skip
    gen.execute(plan, save=False)  # warm: load + scheduler

    raw = StableDiffusionPipeline.from_pretrained(
        files.diffusers_dir, safety_checker=None, requires_safety_checker=False, local_files_only=True
    )
    raw.set_progress_bar_config(disable=True)
    pool_pipe = gen._pipelines().get(plan.model, dtype=plan.dtype, device=plan.device).pipe
    raw.scheduler = type(pool_pipe.scheduler).from_config(pool_pipe.scheduler.config)

    def ours() -> float:
        t = time.perf_counter()
        gen.generate(plan.prompt, negative_prompt=plan.negative_prompt, model=str(files.diffusers_dir),
                     seed=1, save=False, **settings)  # fmt: skip
        return time.perf_counter() - t

    def theirs() -> float:
        t = time.perf_counter()
        raw(
            plan.prompt, negative_prompt=plan.negative_prompt, width=args.size, height=args.size,
            num_inference_steps=args.steps, guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(1),
        )  # fmt: skip
        return time.perf_counter() - t

    ours(), theirs()  # warm both paths
    a, b, ratios = [], [], []
    for i in range(args.rounds):
        x, y = (ours(), theirs()) if i % 2 == 0 else tuple(reversed((theirs(), ours())))
        a.append(x)
        b.append(y)
        ratios.append(x / y)
    print(f"tiny SD1, {args.size}px, {args.steps} steps, CFG, {args.rounds} interleaved rounds, torch threads "
          f"{torch.get_num_threads()}")  # fmt: skip
    print(f"ml-diffusion generate(): median {statistics.median(a) * 1000:.1f} ms")
    print(f"raw diffusers pipe():    median {statistics.median(b) * 1000:.1f} ms")
    print(f"ratio ours/raw: median {statistics.median(ratios):.3f} (target <= 1.02)")


if __name__ == "__main__":
    main()
