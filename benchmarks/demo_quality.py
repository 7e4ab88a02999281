"""Measured prompt adherence of the shipped demo model, judged by pixel analysis of generated images.

Run: ``python benchmarks/demo_quality.py [--model DIR] [--count 40] [--steps 20] [--cfg 4] [--json OUT]``.

Held-out captions (shape, colour, position combinations never seen in training) are generated through
plain diffusers (DDIM, CFG ``--cfg``) and read back by ``demo_kit.analysis``: object colour,
position and shape. The style LoRA is judged by the outline detector with the LoRA applied (trigger word in
the prompt) and not applied; the ControlNet by the IoU of the generated object with the control mask.
The shape read on the VAE's own reconstructions of the true renders is printed as the ceiling the
decoder allows; with the LoRA applied, how often the object keeps its colour, position and shape is
printed too (no target), next to how well the analyser reads true outlined renders.
Seconds per image are timed through ``ImageGenerator`` at the planner's default steps. Each figure is
printed with its target and whether it was met.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # the demo kit

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

TARGETS = {
    "colour": 0.90,
    "position": 0.80,
    "shape": 0.70,
    "style_on": 0.90,
    "style_off": 0.90,
    "controlnet_iou": 0.60,
}


_LABEL = {"color": "colour", "position": "position", "shape": "shape"}


def _pixels(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def _generate(
    pipe: object, prompts: list[str], seed: int, steps: int, cfg: float, **extra: object
) -> np.ndarray:
    import torch

    out = []
    for start in range(0, len(prompts), 10):
        chunk = prompts[start : start + 10]
        gen = torch.Generator().manual_seed(seed + start)
        kwargs = {k: (v[start : start + 10] if isinstance(v, list) else v) for k, v in extra.items()}
        result = pipe(  # type: ignore[operator]
            chunk, num_inference_steps=steps, guidance_scale=cfg, generator=gen, height=64, width=64,
            output_type="np", **kwargs,
        )  # fmt: skip
        out.append(_pixels(result.images))
    return np.concatenate(out)


def _line(name: str, value: float, target: float | None, unit: str = "%") -> str:
    shown = f"{value:.0%}" if unit == "%" else f"{value:.2f}{unit}"
    if target is None:
        return f"{name:<34} {shown:>8}"
    aim = f"{target:.0%}" if unit == "%" else f"{target:.2f}"
    verdict = "met" if value >= target else "MISSED"
    return f"{name:<34} {shown:>8}   target >= {aim:<5} {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="demo diffusers folder (default: the shipped one)"
    )
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    import torch
    from demo_kit.analysis import analyse, mask_iou
    from demo_kit.train_common import make_batch
    from demo_kit.world import render, sample_scene
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline, StableDiffusionPipeline

    from ml_lib.diffusion.demo.assets import LORA_FILE, TRIGGER_WORD, demo_model_dir

    torch.set_num_threads(args.threads)
    model = args.model or demo_model_dir()
    pipe = StableDiffusionPipeline.from_pretrained(
        model, dtype=torch.float32, safety_checker=None, requires_safety_checker=False, local_files_only=True
    )
    pipe.set_progress_bar_config(disable=True)
    figures: dict[str, float] = {}
    batch = make_batch(args.seed, 0, args.count, split="eval", stream=96)
    truth = [
        analyse(img)
        for img in ((batch.images.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    ]
    gt = np.mean([a.color == s.color and a.position == s.position and a.shape == s.shape
                  for a, s in zip(truth, batch.scenes, strict=True)])  # fmt: skip
    print(f"model {model}; {args.count} held-out captions, DDIM {args.steps} steps, CFG {args.cfg}")
    print(_line("analyser on the true renders", float(gt), None))
    with torch.no_grad():
        latents = pipe.vae.encode(batch.images).latent_dist.mean
        recon = pipe.vae.decode(latents).sample.clamp(-1, 1)
    rebuilt = [analyse(img) for img in _pixels((recon.permute(0, 2, 3, 1).numpy() + 1) / 2)]
    ceiling = np.mean([a.shape == s.shape for a, s in zip(rebuilt, batch.scenes, strict=True)])
    print(_line("shape on the VAE's reconstructions", float(ceiling), None))
    outlined = [render(sample_scene(i, "eval", style="outline")) for i in range(args.count)]
    read = [analyse(r.image) for r in outlined]
    print(_line("outline detector on true renders", float(np.mean([a.outlined for a in read])), None))
    for field in ("color", "shape"):
        right = np.mean(
            [getattr(a, field) == getattr(r.scene, field) for a, r in zip(read, outlined, strict=True)]
        )
        print(_line(f"{_LABEL[field]} read on true outlined renders", float(right), None))

    images = _generate(pipe, list(batch.captions), args.seed, args.steps, args.cfg)
    found = [analyse(img) for img in images]
    for name, field in (("colour", "color"), ("position", "position"), ("shape", "shape")):
        figures[name] = float(
            np.mean(
                [getattr(a, field) == getattr(s, field) for a, s in zip(found, batch.scenes, strict=True)]
            )
        )
        print(_line(f"object {name} correct", figures[name], TARGETS[name]))

    lora = model / LORA_FILE
    if lora.is_file():
        half = max(10, args.count // 2)
        styled = [f"{TRIGGER_WORD}, {c}" for c in batch.captions[:half]]
        plain = list(batch.captions[:half])
        off = _generate(pipe, plain, args.seed + 1, args.steps, args.cfg)
        pipe.load_lora_weights(str(lora), adapter_name="style")
        on = _generate(pipe, styled, args.seed + 1, args.steps, args.cfg)
        pipe.unload_lora_weights()
        figures["style_on"] = float(np.mean([analyse(i).outlined for i in on]))
        figures["style_off"] = float(np.mean([not analyse(i).outlined for i in off]))
        print(_line("style LoRA: outline when applied", figures["style_on"], TARGETS["style_on"]))
        print(_line("style LoRA: no outline when not", figures["style_off"], TARGETS["style_off"]))
        kept = [analyse(i) for i in on]
        for field in ("color", "position", "shape"):
            name = f"style_on_{field}"
            figures[name] = float(
                np.mean(
                    [getattr(a, field) == getattr(s, field) for a, s in zip(kept, batch.scenes, strict=False)]
                )
            )
            print(_line(f"style LoRA: object {_LABEL[field]} kept", figures[name], None))
    else:
        print(f"{'style LoRA':<34} {'absent':>8}   MISSED (no {LORA_FILE})")

    if (model / "controlnet" / "config.json").is_file():
        from demo_kit.world import control_image

        controlnet = ControlNetModel.from_pretrained(model / "controlnet", dtype=torch.float32)
        cpipe = StableDiffusionControlNetPipeline(**pipe.components, controlnet=controlnet)
        cpipe.set_progress_bar_config(disable=True)
        half = max(10, args.count // 2)
        controls = [control_image(m) for m in batch.masks[:half]]
        generated = _generate(
            cpipe, list(batch.captions[:half]), args.seed + 2, args.steps, args.cfg, image=controls
        )
        figures["controlnet_iou"] = float(
            np.mean([mask_iou(analyse(g).mask, m) for g, m in zip(generated, batch.masks, strict=False)])
        )
        print(_line("ControlNet mask IoU", figures["controlnet_iou"], TARGETS["controlnet_iou"], unit=""))
    else:
        print(f"{'ControlNet':<34} {'absent':>8}   MISSED (no controlnet/)")

    from ml_lib.diffusion import ImageGenerator, Settings

    home = Path(tempfile.mkdtemp(prefix="ml-diffusion-demo-bench-"))
    with ImageGenerator(Settings(home=home), device="cpu") as gen:
        plan = gen.plan(
            "a red circle on the left, white background", model=str(model), width=64, height=64, seed=1
        )
        gen.execute(plan, save=False)  # warm: load
        times = []
        for seed in (2, 3, 4):
            started = time.perf_counter()
            gen.execute(gen.plan("a red circle on the left, white background", model=str(model), width=64,
                                 height=64, seed=seed), save=False)  # fmt: skip
            times.append(time.perf_counter() - started)
    figures["seconds_per_image"] = float(np.median(times))
    figures["default_steps"] = float(plan.steps)
    print(
        _line(
            f"seconds per image ({plan.steps} steps, {plan.sampler})",
            figures["seconds_per_image"],
            None,
            unit=" s",
        )
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
