"""Ours against raw diffusers on a CPU: real-size SD 1.5 (random weights, A1111 single file, fp16 on disk).

    python benchmarks/cpu_peers.py [--rounds 1] [--size 256] [--steps 4] [--threads 2]

Each contender runs in its own fresh process, one after the other, the same image (256x256, 4 Euler
steps, CFG 7, seed 1, 2 threads):

- ``raw``: ``StableDiffusionPipeline.from_single_file(FILE, dtype=torch.float32)`` then one call, what a
  diffusers user writes;
- ``ours``: what ``ml-diffusion generate --model FILE`` runs (``ImageGenerator.plan``, the prompt analyzer's
  encoder freed, ``execute``), with the policy the planner picks for this machine (``planning/cpu_policy.py``).

Seconds are the child's whole life (interpreter start, imports, load, generation); peak RSS is the
child's ``ru_maxrss`` from ``wait4``. Printed: seconds and peak RSS of each, ours/raw ratios, and the
largest and mean pixel difference between the two images (what our storage costs against fp32).
Target: ours ≤ 0.9x raw diffusers' time and ≤ 2.6 GB peak RSS, in the same run. With ``--rounds N``
the contenders alternate N times and the medians are compared.

By default ``ours`` starts with an empty catalog, as on a model's first use: planning hashes the whole
file for A1111's "Model hash" (2 s for SD 1.5's 2.1 GB here), as A1111 does on a first load. With
``--known-model`` an untimed first run (its seconds printed) catalogs the model and the timed runs share
its catalog, as after ``ml-diffusion models hash`` or any earlier generation with that file.
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
PROMPT = "a photograph of an astronaut riding a horse"
SEED = 1


def _raw(file: str, out: str, size: int, steps: int, threads: int) -> None:
    import numpy as np
    import torch
    from _realsize import CONFIGS
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    tokenizer = CLIPTokenizer.from_pretrained(str(HERE.parent / "src/ml_lib/diffusion/assets/clip_tokenizer"))
    pipe = StableDiffusionPipeline.from_single_file(
        file,
        config=str(CONFIGS / "sd1"),
        local_files_only=True,
        dtype=torch.float32,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    t1 = time.perf_counter()
    image = pipe(
        PROMPT,
        num_inference_steps=steps,
        guidance_scale=7.0,
        width=size,
        height=size,
        generator=torch.Generator("cpu").manual_seed(SEED),
    ).images[0]
    print(f"  raw: load {t1 - t0:.1f} s, generate {time.perf_counter() - t1:.1f} s", file=sys.stderr)
    np.save(out, np.asarray(image))


def _prime(file: str, home: str, threads: int) -> None:
    """Catalog ``file`` in ``home`` (what a first use does before loading: identify and hash it)."""
    from ml_lib.diffusion import ImageGenerator, Settings

    with ImageGenerator(Settings(home=Path(home), model_roots=(), threads=threads), device="cpu") as gen:
        gen.plan(PROMPT, model=file)


def _ours(file: str, out: str, size: int, steps: int, threads: int, home: str | None) -> None:
    import numpy as np

    from ml_lib.diffusion import ImageGenerator, Settings

    where = Path(home) if home else Path(tempfile.mkdtemp(prefix="ml-diffusion-peers-"))
    with ImageGenerator(Settings(home=where, model_roots=(), threads=threads), device="cpu") as gen:
        plan = gen.plan(
            PROMPT,
            model=file,
            width=size,
            height=size,
            steps=steps,
            cfg_scale=7.0,
            sampler="Euler",
            seed=SEED,
        )
        gen.release_analyzer()  # as `ml-diffusion generate` does: one plan per process
        result = gen.execute(plan, save=False)
    phases = result.memory.to_dict() if result.memory is not None else {}
    peaks = {k: round(v.get("rss_peak", 0) / 1e9, 2) for k, v in phases.items() if isinstance(v, dict)}
    print(f"  ours: peak RSS per phase (GB) {peaks}", file=sys.stderr)
    t = result.timings
    times = (
        f"load {t.load:.1f} s, encode {t.encode:.1f} s, denoise {t.denoise:.1f} s, decode {t.decode:.1f} s"
    )
    print(f"  ours: {times}", file=sys.stderr)
    for d in result.plan.decisions:
        if d.field in ("storage", "memory", "threads"):
            print(f"  ours: {d.field} = {d.value} ({d.reason})", file=sys.stderr)
    np.save(out, np.asarray(result.images[0]))


def _run(
    which: str, file: Path, out: Path, args: argparse.Namespace, home: Path | None = None
) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one contender in a fresh process."""
    cmd = [sys.executable, __file__, "--child", which, "--file", str(file), "--out", str(out)]
    cmd += ["--size", str(args.size), "--steps", str(args.steps), "--threads", str(args.threads)]
    cmd += ["--home", str(home)] if home is not None else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{which} failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--known-model", action="store_true", help="ours with the model already catalogued")
    parser.add_argument("--child", choices=("raw", "ours", "build", "prime"), default=None)
    parser.add_argument("--file", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--home", default=None)
    args = parser.parse_args()
    if args.child == "build":
        from _realsize import checkpoint

        print(checkpoint("sd1"))
        return
    if args.child is not None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if args.child == "raw":
            _raw(args.file, args.out, args.size, args.steps, args.threads)
        elif args.child == "prime":
            _prime(args.file, args.home, args.threads)
        else:
            _ours(args.file, args.out, args.size, args.steps, args.threads, args.home)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    built = subprocess.run(
        [sys.executable, __file__, "--child", "build"], env=env, capture_output=True, text=True, check=True
    )
    file = Path(built.stdout.strip().splitlines()[-1])
    work = Path(tempfile.mkdtemp(prefix="ml-diffusion-peers-"))
    home = work / "home" if args.known_model else None
    if home is not None:
        seconds, _ = _run("prime", file, work / "prime.npy", args, home)
        print(f"first use (untimed below): catalog and hash the model {seconds:7.1f} s", flush=True)
    figures: dict[str, list[tuple[float, int]]] = {"raw": [], "ours": []}
    for r in range(args.rounds):
        for which in ("raw", "ours"):
            seconds, peak = _run(which, file, work / f"{which}.npy", args, home if which == "ours" else None)
            figures[which].append((seconds, peak))
            print(f"round {r + 1} {which:5} {seconds:7.1f} s  peak RSS {peak / 1e9:5.2f} GB", flush=True)
    import numpy as np

    raw_img = np.load(work / "raw.npy").astype(np.int16)
    ours_img = np.load(work / "ours.npy").astype(np.int16)
    diff = np.abs(raw_img - ours_img)
    med = {
        k: (statistics.median(s for s, _ in v), statistics.median(p for _, p in v))
        for k, v in figures.items()
    }
    (rs, rp), (os_, op) = med["raw"], med["ours"]
    print(
        json.dumps(
            {
                "file": str(file),
                "size": args.size,
                "steps": args.steps,
                "threads": args.threads,
                "rounds": args.rounds,
                "known_model": args.known_model,
                "raw_seconds": round(rs, 1),
                "raw_peak_gb": round(rp / 1e9, 2),
                "ours_seconds": round(os_, 1),
                "ours_peak_gb": round(op / 1e9, 2),
                "time_ratio": round(os_ / rs, 3),
                "rss_ratio": round(op / rp, 3),
                "pixel_diff_max": int(diff.max()),
                "pixel_diff_mean": round(float(diff.mean()), 4),
                "target_met": os_ <= 0.9 * rs and op <= 2.6e9,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
