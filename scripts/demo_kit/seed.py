"""Stage ``seed``: rebuild training state from the shipped demo model when the checkpoints are gone.

Training state lives outside the repository and may not survive a move to another machine. The shipped
weights are the EMA networks at ``training.json``'s UNet step (stored in fp16), so training can go on from
them: ``vae.pt`` at the shipped VAE step (finished, or resumed when ``VAE_STEPS`` has grown), ``unet.pt``
at the shipped step with the EMA weights as both the live and the EMA networks and no optimizer state
(``train_unet`` then re-warms the learning rate). This is a continuation, not a bit-exact resume;
``unet.pt`` records ``seeded_from`` so the logs say so.

A resume point (``scripts/demo_kit/resume/``, written by :func:`write_resume` at the end of a session)
carries the stages' weights past the shipped step across machines: ``vae.safetensors`` (fp32) with
``vae.json``, and, once the UNet has trained past the shipped step, ``unet.safetensors`` (the EMA UNet and
text encoder in fp16, as shipped, 15 MB; the training-only probe head in fp32) with ``unet.json``.
``seed`` prefers them to the shipped weights; the UNet goes on from its EMA weights with a fresh optimizer,
as it does from the shipped model.
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
    extra: dict[str, object] = {"seconds": float(facts["unet"]["minutes"]) * 60.0}
    if (resume / "unet.safetensors").is_file():
        unet, text, extra = _unet_resume(resume)
        step = int(extra.pop("step"))  # type: ignore[call-overload]
        log.info("seed: UNet from the resume point %s at step %d", resume, step)
    save_checkpoint(
        state / "unet.pt",
        {"unet": unet, "text_encoder": text, "opt": None, "ema_unet": unet, "ema_text": text}
        | {"step": step, "seeded_from": step}
        | extra,
    )
    log.info("seed: state rebuilt from %s at UNet step %d (fresh optimizer)", assets, step)
    return True


def _unet_resume(resume: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, object]]:
    """The UNet, text encoder (fp32) and the rest of ``unet.pt`` (step, seconds, probe head) of a resume
    point."""
    from safetensors.torch import load_file

    tensors = load_file(resume / "unet.safetensors")
    part = {
        prefix: {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        for prefix in ("unet.", "text.", "aux_head.")
    }
    facts: dict[str, object] = json.loads((resume / "unet.json").read_text(encoding="utf-8"))
    if part["aux_head."]:
        facts["aux_head"] = part["aux_head."]
    return _fp32(part["unet."]), _fp32(part["text."]), facts


def write_resume(state: Path, resume: Path = RESUME) -> None:
    """Leave the VAE of ``state`` (fp32 weights, step, seconds, config; no optimizer) in ``resume``, and the
    UNet's EMA weights (fp16) when it has trained past the step it was seeded from."""
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
    unet = load_checkpoint(state / "unet.pt")
    if unet is None or int(unet["step"]) <= int(unet.get("seeded_from", -1)):
        return  # nothing learned past what the shipped model (or the last resume point) holds
    tensors = {f"unet.{k}": v.half() for k, v in unet["ema_unet"].items()}
    tensors |= {f"text.{k}": v.half() for k, v in unet["ema_text"].items()}
    tensors |= {f"aux_head.{k}": v.float() for k, v in unet.get("aux_head", {}).items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(resume / "unet.safetensors"))
    done = {"step": int(unet["step"]), "seconds": float(unet["seconds"])}
    (resume / "unet.json").write_text(json.dumps(done, indent=1) + "\n", encoding="utf-8")
    log.info("resume point: UNet at step %d in %s", done["step"], resume)
