"""Stage ``unet``: train the demo UNet and text encoder on VAE latents of world scenes (epsilon prediction).

Recipe (FACTS): DDPM 1000 scaled_linear, min-SNR-5 weighting (with an x0-space floor from step 4,297),
AdamW 4e-4 with warm-up, grad clip 1, 10% caption dropout, EMA 0.995 of both networks. Every
``_EVAL_EVERY`` steps the EMA model samples held-out captions (DDIM 20 steps, CFG 4) and the pixel
analysis scores colour, background, position and shape.

World 2 (from step 16,000, the shipped world-1 UNet): the text encoder's embedding grows for the new
words (:func:`~.tokenizer.grow_embeddings`), the learning rate warms up again and follows its own cosine,
15% of captions leave the position unsaid, and the probe also reads the background.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import analyse
from .model import SCHEDULE, build_text_encoder, build_unet, make_pipeline
from .tokenizer import demo_tokenizer, grow_embeddings
from .train_common import (
    Budget,
    load_checkpoint,
    loss_weight,
    make_batch,
    optimizer_step,
    save_checkpoint,
    stage_logger,
)
from .train_vae import load_vae
from .world import BACKGROUNDS, COLORS, POSITIONS, SHAPES

__all__ = ["UNET_STEPS", "ema_update", "encode_text", "held_out_scores", "load_base", "train_unet"]

UNET_STEPS = 30000  # world 1: 16,000 (6,000 planned at first; raised when 3,200 left position unlearned)
WORLD2_FROM = 16000
_NEUTRAL = 0.15  # world 2: captions that leave the position unsaid (the prior, and inpainting's prompts)
_BATCH = 16
_LR = 4e-4
_WARMUP = 200
_EMA = 0.995
_DROPOUT = 0.1
_SNR_GAMMA = 5.0
# From this step on, the x0-space weight has a floor: min-SNR's weight (min(snr, 5) in x0 terms) all but
# vanishes at the high noise levels where an object's place is decided (snr 0.005-0.1), and at step 4,297
# the model still placed objects by the noise alone, whatever the caption said.
_X0_FLOOR = 0.3
_X0_FLOOR_FROM = 4297
# From this step on, an auxiliary head (training only, not shipped) reads the object's position, colour and
# shape back from the text encoder's pooled output. At step 7,441 "left" and "right" encoded almost alike
# (hidden-state distance 0.5, against 15 for "red" and "blue"): the UNet had no position to attend to, and
# so gave the text encoder no reason to keep one.
_AUX_FROM = 7441
_AUX_WEIGHT = 0.05
_AUX_FIELDS = (
    ("position", tuple(POSITIONS)), ("color", tuple(COLORS)), ("shape", SHAPES), ("background", BACKGROUNDS),
)  # fmt: skip
_EVAL_EVERY = 400
_STREAM = 2

log = stage_logger("unet")


def encode_text(tokenizer: Any, text_encoder: Any, captions: list[str] | tuple[str, ...]) -> torch.Tensor:
    """Last hidden states of the text encoder for ``captions`` (padded to 77 tokens)."""
    ids = tokenizer(
        list(captions),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return text_encoder(ids)[0]


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema ← decay·ema + (1 - decay)·model`` for every parameter."""
    ema_params = list(ema.parameters())
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)


def alphas_cumprod() -> torch.Tensor:
    """ᾱ_t of the training schedule (scaled_linear, 1000 steps)."""
    betas = torch.linspace(SCHEDULE["beta_start"] ** 0.5, SCHEDULE["beta_end"] ** 0.5, 1000) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


@torch.no_grad()
def held_out_scores(pipe: Any, seed: int, count: int = 20, steps: int = 20) -> dict[str, float]:
    """Colour / background / position / shape accuracy of ``pipe`` on ``count`` held-out captions."""
    batch = make_batch(seed, 0, count, split="eval", stream=97)
    pipe.set_progress_bar_config(disable=True)
    gen = torch.Generator().manual_seed(seed)
    images = pipe(
        list(batch.captions),
        num_inference_steps=steps,
        guidance_scale=4.0,
        generator=gen,
        height=64,
        width=64,
        output_type="np",
    ).images
    pixels = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    found = [analyse(p) for p in pixels]
    return {
        field: float(
            np.mean(
                [getattr(a, field) == getattr(s, field) for a, s in zip(found, batch.scenes, strict=True)]
            )
        )
        for field in ("color", "background", "position", "shape")
    }


def aux_head() -> torch.nn.Linear:
    """The auxiliary probe: pooled text features → logits of every field in :data:`_AUX_FIELDS`."""
    return torch.nn.Linear(128, sum(len(values) for _, values in _AUX_FIELDS))


def aux_loss(head: torch.nn.Module, pooled: torch.Tensor, scenes: tuple[Any, ...]) -> torch.Tensor:
    """Cross-entropy of the probe's reading of each scene's position, colour and shape from ``pooled``."""
    logits, start, total = head(pooled), 0, pooled.new_zeros(())
    for field, values in _AUX_FIELDS:
        labels = torch.tensor([values.index(getattr(s, field)) for s in scenes])
        total = total + torch.nn.functional.cross_entropy(logits[:, start : start + len(values)], labels)
        start += len(values)
    return total


def _progress(step: int) -> float:
    """Where ``step`` is in its cosine: world 1's (0 to 16,000) or world 2's (16,000 to the end)."""
    if step >= WORLD2_FROM:
        return (step - WORLD2_FROM) / max(1, UNET_STEPS - WORLD2_FROM)
    return step / WORLD2_FROM


def train_unet(state: Path, budget: Budget, *, seed: int = 0) -> bool:
    """Train (or resume) UNet + text encoder until :data:`UNET_STEPS`; True when complete."""
    path = state / "unet.pt"
    ckpt = load_checkpoint(path)
    if ckpt is not None and ckpt["step"] >= UNET_STEPS:
        return True
    vae = load_vae(state).requires_grad_(False)
    tokenizer = demo_tokenizer()
    torch.manual_seed(seed + 1)
    unet, text_encoder = build_unet(), build_text_encoder(tokenizer)
    params = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=_LR, weight_decay=1e-2)
    step, seconds, started, warm_from = 0, 0.0, time.monotonic(), 0
    if ckpt is not None:
        seconds = float(ckpt.get("seconds", 0.0))
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(grow_embeddings(ckpt["text_encoder"], tokenizer))
        step = ckpt["step"]
        warm_from = int(ckpt.get("warm_from", 0))
        if ckpt["opt"] is None:  # seeded from the shipped weights: fresh moments, warm up again
            warm_from = step
        else:
            opt.load_state_dict(ckpt["opt"])
    head = aux_head()
    if ckpt is not None and ckpt.get("aux_head", {}).get("bias", torch.zeros(0)).shape == head.bias.shape:
        head.load_state_dict(ckpt["aux_head"])
    head_opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.0)
    ema_unet, ema_text = (
        copy.deepcopy(unet).requires_grad_(False),
        copy.deepcopy(text_encoder).requires_grad_(False),
    )
    if ckpt is not None:
        ema_unet.load_state_dict(ckpt["ema_unet"])
        ema_text.load_state_dict(grow_embeddings(ckpt["ema_text"], tokenizer))
        log.info("unet: resumed at step %d", step)

    def save() -> None:
        save_checkpoint(
            path,
            {
                "unet": unet.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "opt": opt.state_dict(),
                "ema_unet": ema_unet.state_dict(),
                "ema_text": ema_text.state_dict(),
                "step": step,
                "seconds": seconds + time.monotonic() - started,
                "warm_from": warm_from,
                "aux_head": head.state_dict(),
            },
        )

    acp = alphas_cumprod()
    scale = float(vae.config.scaling_factor)
    unet.train()
    text_encoder.train()
    losses: list[float] = []
    aux_losses: list[float] = []
    while step < UNET_STEPS and not budget.expired():
        neutral = _NEUTRAL if step >= WORLD2_FROM else 0.0
        batch = make_batch(seed, step, _BATCH, neutral_fraction=neutral, stream=_STREAM)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        with torch.no_grad():
            latents = vae.encode(batch.images).latent_dist.mean * scale
        drop = torch.rand(_BATCH, generator=gen) < _DROPOUT
        captions = ["" if d else c for d, c in zip(drop.tolist(), batch.captions, strict=True)]
        t = torch.randint(0, 1000, (_BATCH,), generator=gen)
        noise = torch.randn(latents.shape, generator=gen)
        a = acp[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        ids = tokenizer(
            captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        encoded = text_encoder(ids)
        pred = unet(noisy, t, encoded[0]).sample
        snr = acp[t] / (1 - acp[t])
        weight = loss_weight(snr, _SNR_GAMMA, _X0_FLOOR if step >= _X0_FLOOR_FROM else 0.0)
        loss = ((pred - noise).pow(2).mean(dim=(1, 2, 3)) * weight).mean()
        kept = [i for i, d in enumerate(drop.tolist()) if not d]
        if step >= _AUX_FROM and kept:
            probe = aux_loss(head, encoded[1][kept], tuple(batch.scenes[i] for i in kept))
            aux_losses.append(float(probe.detach()))
            loss = loss + _AUX_WEIGHT * probe
            head_opt.zero_grad(set_to_none=True)
        warm = min(1.0, (step - warm_from + 1) / _WARMUP)
        lr = _LR * warm * (0.2 + 0.4 * (1 + math.cos(math.pi * _progress(step))))
        losses.append(optimizer_step(opt, loss, params, lr))
        if step >= _AUX_FROM and kept:
            head_opt.step()
        decay = _EMA if step >= _WARMUP else 0.0
        ema_update(ema_unet, unet, decay)
        ema_update(ema_text, text_encoder, decay)
        step += 1
        if step % 50 == 0:
            probe_text = f" probe {np.mean(aux_losses):.3f}" if aux_losses else ""
            log.info("unet step %d loss %.4f%s", step, float(np.mean(losses)), probe_text)
            losses.clear()
            aux_losses.clear()
        if step % _EVAL_EVERY == 0:
            scores = held_out_scores(make_pipeline(vae, ema_text, tokenizer, ema_unet), seed)
            log.info("unet step %d held-out %s", step, " ".join(f"{k} {v:.0%}" for k, v in scores.items()))
        if budget.save_due():
            save()
    save()
    return step >= UNET_STEPS


def load_base(state: Path) -> tuple[Any, int]:
    """The current EMA pipeline (VAE, text encoder, tokenizer, UNet) and the UNet step it comes from."""
    ckpt = load_checkpoint(state / "unet.pt")
    if ckpt is None:
        raise RuntimeError(f"No UNet checkpoint in {state}; run the 'unet' stage first.")
    tokenizer = demo_tokenizer()
    unet, text_encoder = build_unet(), build_text_encoder(tokenizer)
    unet.load_state_dict(ckpt["ema_unet"])
    text_encoder.load_state_dict(grow_embeddings(ckpt["ema_text"], tokenizer))
    pipe = make_pipeline(load_vae(state), text_encoder.eval(), tokenizer, unet.eval())
    return pipe, int(ckpt["step"])
