"""Train the embedded demo model in resumable slices, and export it into the package.

    nohup nice -n 19 python scripts/train_demo.py all --threads 1 --minutes 600 --state /work/demo-train2 \
        >> /work/demo-train2/log.txt 2>&1 &

World 2 (issue 19) fine-tunes the shipped world-1 model: ``seed`` first, then ``all`` goes on from the
shipped steps (VAE 6,200 → 8,000 with its encoder, UNet 16,000 → 30,000 with a grown text encoder, then a
new LoRA and ControlNet). One thread: on a busy 2-core machine a second thread only spins.

Stages (in order): ``vae``, ``unet``, ``lora``, ``controlnet``, ``export``; ``all`` runs what is left.
``seed`` rebuilds lost state from the shipped model (VAE finished, UNet at the shipped step, fresh
optimizer), so training can go on from it on a new machine: ``train_demo.py seed`` then ``all``; the VAE
(and the UNet, once trained past the shipped step) come from ``demo_kit/resume/`` when an earlier session
left them there (``train_demo.py resume-point``).
State (checkpoints, ``train.log``) lives in ``--state`` (default ``/work/demo-train``), outside the
repository; each stage resumes from its checkpoint, written every three minutes and at the end of a slice.
``--minutes`` bounds one invocation; ``kill PID`` (SIGTERM) saves and stops. ``export`` writes
``src/ml_lib/diffusion/assets/demo/`` (or ``--out``), and with ``--single-file F.safetensors`` also the
A1111-layout single file and its ``F.config/`` folder.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

STAGES = ("vae", "unet", "lora", "controlnet", "export")
_RUNNERS = {
    "vae": ("demo_kit.train_vae", "train_vae"),
    "unet": ("demo_kit.train_unet", "train_unet"),
    "lora": ("demo_kit.train_lora", "train_lora"),
    "controlnet": ("demo_kit.train_controlnet", "train_controlnet"),
}
REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=(*STAGES, "all", "seed", "resume-point"))
    parser.add_argument("--state", type=Path, default=Path("/work/demo-train"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "src/ml_lib/diffusion/assets/demo")
    parser.add_argument(
        "--single-file", type=Path, default=None, help="export: also write this A1111-layout .safetensors"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    args.state.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.StreamHandler(sys.stdout), logging.FileHandler(args.state / "train.log")],
    )
    import torch

    torch.set_num_threads(args.threads)
    from demo_kit.train_common import Budget

    budget = Budget(args.minutes)
    signal.signal(signal.SIGTERM, lambda *_: budget.stop())  # `kill PID`: save the checkpoint, then exit
    log = logging.getLogger("train_demo")
    log.info("start %s (threads %d, %.0f min, state %s)", args.stage, args.threads, args.minutes, args.state)
    if args.stage == "seed":
        from demo_kit.seed import seed_state

        seed_state(args.state, args.out)
        return 0
    if args.stage == "resume-point":  # before a session ends: the VAE's and the UNet's progress, committed
        from demo_kit.seed import write_resume

        write_resume(args.state)
        return 0
    stages = STAGES if args.stage == "all" else (args.stage,)
    for stage in stages:
        started = time.monotonic()
        if stage == "export":
            from demo_kit.export import export_demo

            export_demo(args.state, args.out)
            log.info("exported to %s", args.out)
            if args.single_file:
                from demo_kit.export import export_single_file

                export_single_file(args.out, args.single_file)
                log.info("single file %s (+ %s.config/)", args.single_file, args.single_file.stem)
            continue
        module, name = _RUNNERS[stage]
        done = getattr(importlib.import_module(module), name)(args.state, budget, seed=args.seed)
        log.info(
            "stage %s: %s after %.1f min",
            stage,
            "done" if done else "paused",
            (time.monotonic() - started) / 60,
        )
        if not done:
            log.info("resume with: %s", " ".join([sys.executable, *sys.argv]))
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
