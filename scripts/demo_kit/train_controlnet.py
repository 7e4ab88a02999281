"""Stage ``controlnet``: a ControlNet (object mask → image) on the frozen demo UNet and text encoder.

Initialised from the UNet (``ControlNetModel.from_unet``, zero output convolutions), with a conditioning
embedding that downsamples 64 → 16 (three channel widths, two stride-2 convolutions). The control image is
the white-on-black object mask in [0, 1], as the diffusers ControlNet pipeline feeds it. World 2: objects
anywhere in the frame, captions that say no position, another one or the nearest one (a ControlNet trained
only on captions that agree with its mask learns to lean on the caption, not the mask). The checkpoint
records the UNet step it was trained against; when the base has moved on, the stage starts over.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .train_common import (
    Budget,
    load_checkpoint,
    loss_weight,
    make_batch,
    optimizer_step,
    save_checkpoint,
    stage_logger,
)
from .train_unet import alphas_cumprod, encode_text, load_base

__all__ = ["CONTROLNET_STEPS", "build_controlnet", "control_tensor", "load_controlnet", "train_controlnet"]

CONTROLNET_STEPS = 2000  # world 1: 600 (captions always agreed with the mask)
_BATCH = 16
_LR = 5e-4
_DROPOUT = 0.1
_STREAM = 4

log = stage_logger("controlnet")


def build_controlnet(unet: Any) -> Any:
    """A ControlNet copied from ``unet`` with a 4x downsampling conditioning embedding."""
    from diffusers import ControlNetModel

    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32, 64))


def control_tensor(masks: np.ndarray) -> torch.Tensor:
    """Boolean masks (N, 64, 64) → control images (N, 3, 64, 64) in [0, 1]."""
    return torch.from_numpy(masks.astype(np.float32))[:, None].repeat(1, 3, 1, 1)


def train_controlnet(state: Path, budget: Budget, *, seed: int = 0) -> bool:
    """Train (or resume) the ControlNet until :data:`CONTROLNET_STEPS`; True when complete."""
    path = state / "controlnet.pt"
    pipe, base_step = load_base(state)
    ckpt = load_checkpoint(path)
    if ckpt is not None and ckpt["base_step"] != base_step:
        log.info(
            "controlnet: base UNet moved from step %d to %d, starting over", ckpt["base_step"], base_step
        )
        ckpt = None
    if ckpt is not None and ckpt["step"] >= CONTROLNET_STEPS:
        return True
    unet, vae, tokenizer, text_encoder = pipe.unet, pipe.vae, pipe.tokenizer, pipe.text_encoder
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    torch.manual_seed(seed + 3)
    controlnet = build_controlnet(unet)
    opt = torch.optim.AdamW(controlnet.parameters(), lr=_LR, weight_decay=1e-2)
    step, seconds, started = 0, 0.0, time.monotonic()
    if ckpt is not None:
        seconds = float(ckpt.get("seconds", 0.0))
        controlnet.load_state_dict(ckpt["controlnet"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        log.info("controlnet: resumed at step %d", step)

    def save() -> None:
        save_checkpoint(
            path,
            {
                "controlnet": controlnet.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "seconds": seconds + time.monotonic() - started,
                "base_step": base_step,
                "config": dict(controlnet.config),
            },
        )

    acp = alphas_cumprod()
    scale = float(vae.config.scaling_factor)
    controlnet.train()
    losses: list[float] = []
    while step < CONTROLNET_STEPS and not budget.expired():
        batch = make_batch(seed, step, _BATCH, control=True, stream=_STREAM)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        drop = torch.rand(_BATCH, generator=gen) < _DROPOUT
        captions = ["" if d else c for d, c in zip(drop.tolist(), batch.captions, strict=True)]
        with torch.no_grad():
            latents = vae.encode(batch.images).latent_dist.mean * scale
            context = encode_text(tokenizer, text_encoder, captions)
        t = torch.randint(0, 1000, (_BATCH,), generator=gen)
        noise = torch.randn(latents.shape, generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        down, mid = controlnet(
            noisy, t, context, controlnet_cond=control_tensor(batch.masks), return_dict=False
        )
        pred = unet(
            noisy, t, context, down_block_additional_residuals=down, mid_block_additional_residual=mid
        ).sample
        snr = acp[t] / (1 - acp[t])
        # the mask decides where the object goes: keep the high-noise steps weighted (x0-space floor)
        loss = ((pred - noise).pow(2).mean(dim=(1, 2, 3)) * loss_weight(snr, x0_floor=0.3)).mean()
        losses.append(optimizer_step(opt, loss, controlnet.parameters(), _LR * min(1.0, (step + 1) / 50)))
        step += 1
        if step % 50 == 0:
            log.info("controlnet step %d loss %.4f", step, float(np.mean(losses)))
            losses.clear()
        if budget.save_due():
            save()
    save()
    return step >= CONTROLNET_STEPS


def load_controlnet(state: Path) -> tuple[Any, int]:
    """The trained ControlNet (eval) and the UNet step it was trained against."""
    from diffusers import ControlNetModel

    ckpt = load_checkpoint(state / "controlnet.pt")
    if ckpt is None:
        raise RuntimeError(f"No ControlNet checkpoint in {state}; run the 'controlnet' stage first.")
    controlnet = ControlNetModel.from_config(ckpt["config"])
    controlnet.load_state_dict(ckpt["controlnet"])
    return controlnet.eval(), int(ckpt["base_step"])
