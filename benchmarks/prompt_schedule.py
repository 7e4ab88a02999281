"""Cost of scheduled prompts against a plain prompt, side by side in one run.

    python benchmarks/prompt_schedule.py [--steps 20] [--repeats 3]

On the tiny seeded SD1 pipeline (64 px, Euler, CFG 5, one thread) it runs a plain prompt, a prompt edit,
an alternation and a two-part ``AND``, and prints per prompt: median seconds of the encode and denoise
phases, the denoise ratio to the plain prompt, the text-encoder runs and the UNet batch rows per call.
Expected: edits and alternation cost what the plain prompt costs (each distinct text encoded once, not once
per step: 2-3 encoder runs whatever the step count); ``AND`` with K parts runs K + 1 rows per call instead
of 2, so its denoise phase costs about (K + 1) / 2 times the plain one on a compute-bound CPU.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

PROMPTS = (
    "a red circle on a blue square",
    "a [red circle:blue square:0.5] on a blue square",
    "a [red|blue] circle on a blue square",
    "a red circle AND a blue square :0.8",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from ml_lib.diffusion.engine.executor import execute
    from ml_lib.diffusion.engine.pool import LoadedPipeline
    from ml_lib.diffusion.plan import GenerationPlan, ModelFormat, ModelRef
    from ml_lib.diffusion.planning.prompt_schedule import plan_prompt_schedule
    from ml_lib.diffusion.testing.tiny import tiny_sd1_components

    torch.set_num_threads(1)
    pipe = tiny_sd1_components()
    pipe.set_progress_bar_config(disable=True)
    loaded = LoadedPipeline(pipe, ("tiny", None, "float32", "cpu", "none"))
    encoder_runs: list[int] = []
    rows: list[int] = []
    pipe.text_encoder.register_forward_hook(lambda *_: encoder_runs.append(1))
    pipe.unet.register_forward_pre_hook(
        lambda _m, a, kw: rows.append(kw["encoder_hidden_states"].shape[0]), with_kwargs=True
    )

    def plan(prompt: str) -> GenerationPlan:
        return GenerationPlan(
            prompt=prompt, negative_prompt="blurry", model=ModelRef("tiny", ModelFormat.DIFFUSERS, "sd1"),
            width=64, height=64, steps=args.steps, cfg_scale=5.0, sampler="Euler", schedule="Uniform", seed=1,
            batch_size=1, clip_skip=1, device="cpu", dtype="float32", output_dir="", name_template="",
            prompt_schedule=plan_prompt_schedule(prompt, "blurry", args.steps, "Euler"),
        )  # fmt: skip

    execute(loaded, plan(PROMPTS[0]))  # warm up
    results: dict[str, Any] = {}
    for prompt in PROMPTS:
        encode, denoise = [], []
        for _ in range(args.repeats):
            encoder_runs.clear()
            rows.clear()
            out = execute(loaded, plan(prompt))
            encode.append(out.encode)
            denoise.append(out.denoise)
        results[prompt] = (
            statistics.median(encode),
            statistics.median(denoise),
            len(encoder_runs),
            max(rows),
        )
    base = results[PROMPTS[0]][1]
    print(f"{args.steps} steps, median of {args.repeats}")
    print(
        f"{'prompt':<50} {'encode s':>9} {'denoise s':>10} {'ratio':>6} {'encoder runs':>13} {'UNet rows':>10}"
    )
    for prompt, (enc, den, runs, most) in results.items():
        print(f"{prompt:<50} {enc:>9.3f} {den:>10.3f} {den / base:>6.2f} {runs:>13} {most:>10}")


if __name__ == "__main__":
    main()
