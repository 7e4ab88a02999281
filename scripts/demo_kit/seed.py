"""Stage ``seed``: rebuild training state from the shipped demo model when the checkpoints are gone.

Training state lives outside the repository and may not survive a move to another machine. The shipped
weights are the EMA networks at ``training.json``'s UNet step (stored in fp16), so training can go on from
them: ``vae.pt`` at the shipped VAE step (finished, or resumed when ``VAE_STEPS`` has grown), ``unet.pt``
at the shipped step with the EMA weights as both the live and the EMA networks and no optimizer state
(``train_unet`` then re-warms the learning rate). This is a continuation, not a bit-exact resume;
``unet.pt`` records ``seeded_from`` so the logs say so.

A resume point (``scripts/demo_kit/resume/``: ``vae.safetensors`` with ``vae.json``, written by
:func:`write_resume` at the end of a session) carries a stage's weights past the shipped step across
machines; ``seed`` prefers it to the shipped VAE.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .train_common import save_checkpoint, stage_logger

__all__ = ["RESUME", "seed_state", "write_resume"]

#: Where a session leaves its resume point (committed: training state does not survive the machine).
RESUME = Path(__file__).resolve().parent / "resume"

log = stage_logger("seed")


def _fp32(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def seed_state(state: Path, assets: Path, resume: Path = RESUME) -> bool:
    """Write ``vae.pt`` and ``unet.pt`` in ``state`` from the model in ``assets`` (the VAE from the resume
    point in ``resume`` when there is one); False if already there."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    if (state / "vae.pt").exists() or (state / "unet.pt").exists():
        log.info("seed: %s already holds checkpoints; nothing to do", state)
        return False
    facts = json.loads((assets / "training.json").read_text(encoding="utf-8"))
    step = int(facts["unet"]["steps"])
    vae = AutoencoderKL.from_pretrained(assets / "vae", local_files_only=True)
    vae_state = {
        "model": _fp32(vae.state_dict()),
        "opt": None,
        "step": int(facts["vae"]["steps"]),
        "config": dict(vae.config),
        "seconds": float(facts["vae"]["minutes"]) * 60.0,
    }
    if (resume / "vae.safetensors").is_file():
        from safetensors.torch import load_file

        vae_state |= json.loads((resume / "vae.json").read_text(encoding="utf-8"))
        vae_state["model"] = load_file(resume / "vae.safetensors")
        log.info("seed: VAE from the resume point %s at step %d", resume, vae_state["step"])
    save_checkpoint(state / "vae.pt", vae_state)
    unet = _fp32(UNet2DConditionModel.from_pretrained(assets / "unet", local_files_only=True).state_dict())
    text = _fp32(CLIPTextModel.from_pretrained(assets / "text_encoder", local_files_only=True).state_dict())
    save_checkpoint(
        state / "unet.pt",
        {
            "unet": unet,
            "text_encoder": text,
            "opt": None,
            "ema_unet": unet,
            "ema_text": text,
            "step": step,
            "seconds": float(facts["unet"]["minutes"]) * 60.0,
            "seeded_from": step,
        },
    )
    log.info("seed: state rebuilt from %s at UNet step %d (fresh optimizer)", assets, step)
    return True


def write_resume(state: Path, resume: Path = RESUME) -> None:
    """Leave the VAE of ``state`` (fp32 weights, step, seconds, config; no optimizer) in ``resume``."""
    from safetensors.torch import save_file

    from .train_common import load_checkpoint

    vae = load_checkpoint(state / "vae.pt")
    if vae is None:
        raise SystemExit(f"{state} holds no vae.pt")
    resume.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in vae["model"].items()}, str(resume / "vae.safetensors"))
    facts = {"step": int(vae["step"]), "seconds": float(vae["seconds"]), "config": dict(vae["config"])}
    (resume / "vae.json").write_text(json.dumps(facts, indent=1, default=str) + "\n", encoding="utf-8")
    log.info("resume point: VAE at step %d in %s", facts["step"], resume)
