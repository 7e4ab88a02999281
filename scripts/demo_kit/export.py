"""Stage ``export``: the trained demo model → ``assets/demo/`` (fp16 diffusers folder, LoRA, ControlNet).

Layout written (atomically: built beside the target, then swapped in)::

    model_index.json  scheduler/  tokenizer/  text_encoder/  unet/  vae/     StableDiffusionPipeline
    lora/dmoutline.safetensors                                             kohya style LoRA
    controlnet/                                                            ControlNetModel (mask → image)
    README.md                                                              how it was trained, figures

:func:`export_single_file` writes the same model as an A1111/LDM single file plus its config folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import torch

from .train_common import load_checkpoint

__all__ = ["MAX_BYTES", "export_demo", "export_single_file", "write_readme"]

MAX_BYTES = 25 * 1024 * 1024
log = logging.getLogger(__name__)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def _stage_facts(state: Path, base_step: int) -> dict[str, Any]:
    from .world import WORLD_VERSION

    facts: dict[str, Any] = {"commit": _commit(), "world": WORLD_VERSION}
    for name in ("vae", "unet", "lora", "controlnet"):
        ckpt = load_checkpoint(state / f"{name}.pt")
        if ckpt is not None:
            facts[name] = {
                "steps": int(ckpt["step"]),
                "minutes": round(float(ckpt.get("seconds", 0.0)) / 60, 1),
            }
            if "base_step" in ckpt:
                facts[name]["base_step"] = int(ckpt["base_step"])
    facts["unet_step"] = base_step
    return facts


def export_demo(state: Path, out: Path) -> Path:
    """Write the demo model from the checkpoints in ``state`` into ``out``; returns ``out``.

    The LoRA and ControlNet are included when they were trained on the current UNet step, finished or
    not (``training.json`` records every stage's steps).
    """
    from .train_controlnet import load_controlnet
    from .train_unet import load_base

    pipe, base_step = load_base(state)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.mkdir(parents=True)
        for component in (pipe.unet, pipe.vae, pipe.text_encoder):
            component.to(torch.float16)
        pipe.save_pretrained(tmp, safe_serialization=True)
        lora = load_checkpoint(state / "lora.pt")
        if lora is not None and lora["base_step"] == base_step:
            (tmp / "lora").mkdir()
            shutil.copyfile(state / "dmoutline.safetensors", tmp / "lora" / "dmoutline.safetensors")
        else:
            log.warning("export: no LoRA trained on UNet step %d; the folder ships without one", base_step)
        cn = load_checkpoint(state / "controlnet.pt")
        if cn is not None and cn["base_step"] == base_step:
            controlnet, _ = load_controlnet(state)
            controlnet.to(torch.float16).save_pretrained(tmp / "controlnet", safe_serialization=True)
        else:
            log.warning(
                "export: no ControlNet trained on UNet step %d; the folder ships without one", base_step
            )
        from .world import OUTLINE_TRIGGER, vocabulary

        words = sorted({*vocabulary(), OUTLINE_TRIGGER})  # read by ml_lib.diffusion.demo.words
        (tmp / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        facts = _stage_facts(state, base_step)
        (tmp / "training.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
        quality = state / "quality.json"
        if quality.is_file():
            shutil.copyfile(quality, tmp / "quality.json")
        total = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if total > MAX_BYTES:
            raise RuntimeError(
                f"The demo model is {total / 2**20:.1f} MiB, over the {MAX_BYTES / 2**20:.0f} MiB budget."
            )
        readme = out / "README.md"
        if readme.is_file():  # the README is written by hand from training.json and quality.json
            shutil.copyfile(readme, tmp / "README.md")
        if out.exists():
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("export: %.1f MiB in %s", total / 2**20, out)
    return out


def write_readme(out: Path, text: str) -> None:
    """Write ``out/README.md`` atomically."""
    tmp = out / f".README.md.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out / "README.md")


def export_single_file(model_dir: Path, path: Path) -> Path:
    """Write the demo diffusers folder as an A1111/LDM single file (fp16) and ``<stem>.config/`` beside it."""
    from diffusers import StableDiffusionPipeline

    from ml_lib.diffusion.testing.export import save_single_file, write_config_folder

    pipe = StableDiffusionPipeline.from_pretrained(
        model_dir, local_files_only=True, safety_checker=None, requires_safety_checker=False
    )
    save_single_file(pipe, path, dtype=torch.float16, metadata={"modelspec.title": "ml-lib demo"})
    write_config_folder(pipe, path.with_name(f"{path.stem}.config"))
    return path
