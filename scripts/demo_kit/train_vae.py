"""Stage ``vae``: train the demo AutoencoderKL on world images, then fine-tune its decoder on latent means.

Loss: MSE + 0.5·L1 on pixels in [-1, 1] (object pixels weighted 5x) plus a tiny KL term; 10% of images
carry the stripe style. Steps 850-1000 freeze the encoder and decode the latent means (what the UNet is
trained on); steps 1000-1200 go on decoder-only with 40% outline-style images, so the decoder draws the
style LoRA's outlines (the encoder, hence every latent the UNet sees, is unchanged by them). Steps
1200-6200 refine the decoder alone (added after the UNet was trained: at step 1200 the analyser read only
55% of the shapes right on the VAE's own reconstructions, stars as blobs): a fresh cosine schedule and an
L1 loss on image gradients that rewards sharp edges. The latent scaling factor (1 / std) is measured once
the encoder is final and kept from then on, so the refinement never moves the UNet's latents.

World 2 (from step 6,200, the shipped VAE): world 1's encoder read only 49% of world 2's colours right on
reconstructions (new background and object colours), so the whole autoencoder trains again on world-2
images (steps 6,200-7,400, edge loss, 20% outline and 10% striped images), then the decoder alone
(7,400-8,000); the scaling factor is measured again when the encoder is final at step 7,400.

Shapes (from step 8,000, the shipped world-2 VAE): the analyser read small stars right on 3% of the VAE's
own reconstructions, small rings and triangles on about half, so the decoder alone refines again (the
encoder, hence the UNet's latents, unchanged) with a fresh cosine schedule and a band around each object's
outline weighted 12x, where the points of a star and the hole of a ring are.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .analysis import analyse
from .model import build_vae
from .train_common import Budget, load_checkpoint, make_batch, save_checkpoint, stage_logger

__all__ = ["VAE_STEPS", "load_vae", "train_vae"]

VAE_STEPS = 11000
WORLD2_FROM = 6200  # world 2 starts from the shipped (world-1) VAE
SHAPES_FROM = 8000  # then the decoder refines on the objects' outlines (the world-2 VAE shipped at 8,000)
_BAND = 12.0
_W2_ENCODER_UNTIL = 7400  # then the encoder is final and the decoder refines alone
_BASE_STEPS = 1000  # the autoencoder proper; then the decoder learns the outline style
_DECODER_STEPS = 150
_REFINE_FROM = 1200  # decoder refinement: its own warm-up and cosine schedule, plus the edge loss
_REFINE_LR = 1e-3
_EDGE = 0.5
_BATCH = 16
_LR = 1e-3
_KL = 1e-6
_STYLE_LR = 3e-4
_STREAM = 1

log = stage_logger("vae")


def _lr(step: int) -> float:
    if step >= SHAPES_FROM:
        done = (step - SHAPES_FROM) / max(1, VAE_STEPS - SHAPES_FROM)
        warm = min(1.0, (step - SHAPES_FROM + 1) / 100)
        return 3e-4 * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
    if step >= WORLD2_FROM:
        span = SHAPES_FROM - WORLD2_FROM
        done = (step - WORLD2_FROM) / span
        warm = min(1.0, (step - WORLD2_FROM + 1) / 100)
        return 5e-4 * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
    if step >= _REFINE_FROM:
        done = (step - _REFINE_FROM) / (VAE_STEPS - _REFINE_FROM)
        warm = min(1.0, (step - _REFINE_FROM + 1) / 100)
        return _REFINE_LR * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
    if step >= _BASE_STEPS:
        return _STYLE_LR
    warm = min(1.0, (step + 1) / 100)
    return _LR * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / _BASE_STEPS))))


@torch.no_grad()
def _evaluate(vae: torch.nn.Module, seed: int) -> tuple[float, float, float, float]:
    """Reconstruction MSE, object-colour, background and shape accuracy on 48 held-out scenes."""
    batch = make_batch(seed, 0, 48, split="eval", stream=99)
    recon = vae.decode(vae.encode(batch.images).latent_dist.mean).sample.clamp(-1, 1)
    mse = float((recon - batch.images).pow(2).mean())
    pixels = ((recon + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    found = [analyse(p) for p in pixels]
    color = np.mean([a.color == s.color for a, s in zip(found, batch.scenes, strict=True)])
    background = np.mean([a.background == s.background for a, s in zip(found, batch.scenes, strict=True)])
    shape = np.mean([a.shape == s.shape for a, s in zip(found, batch.scenes, strict=True)])
    return mse, float(color), float(background), float(shape)


def outline_band(masks: np.ndarray, width: int = 2) -> torch.Tensor:
    """(N, 1, H, W) 1.0 within ``width`` pixels of each object mask's edge, inside or out."""
    mask = torch.from_numpy(masks[:, None].astype("float32"))
    size = 2 * width + 1
    grown = torch.nn.functional.max_pool2d(mask, size, stride=1, padding=width)
    shrunk = 1.0 - torch.nn.functional.max_pool2d(1.0 - mask, size, stride=1, padding=width)
    return grown - shrunk


def edge_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the vertical and horizontal pixel differences of two image batches."""
    dy = (recon[..., 1:, :] - recon[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    dx = (recon[..., :, 1:] - recon[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    return dy.abs().mean() + dx.abs().mean()


@torch.no_grad()
def _scaling_factor(vae: torch.nn.Module, seed: int) -> float:
    batch = make_batch(seed, 0, 256, striped_fraction=0.1, stream=98)
    return float(1.0 / vae.encode(batch.images).latent_dist.mean.std())


def train_vae(state: Path, budget: Budget, *, seed: int = 0) -> bool:
    """Train (or resume) the VAE until :data:`VAE_STEPS`; True when the stage is complete."""
    path = state / "vae.pt"
    ckpt = load_checkpoint(path)
    if ckpt is not None and ckpt["step"] >= VAE_STEPS:
        return True
    torch.manual_seed(seed)
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=_LR, weight_decay=0.0)
    step, scaling, seconds, started = 0, None, 0.0, time.monotonic()
    if ckpt is not None:
        seconds = float(ckpt.get("seconds", 0.0))
        vae.load_state_dict(ckpt["model"])
        if ckpt["opt"] is not None:  # None: seeded from the shipped weights, fresh moments
            opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        scaling = ckpt.get("config", {}).get("scaling_factor")
        if WORLD2_FROM <= step < _W2_ENCODER_UNTIL:  # the encoder trains again: measure the scale anew
            scaling = None
        log.info("vae: resumed at step %d", step)

    def save() -> None:
        extra = {} if scaling is None else {"config": {**dict(vae.config), "scaling_factor": scaling}}
        elapsed = seconds + time.monotonic() - started
        state_dict = {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": elapsed}
        save_checkpoint(path, {**state_dict, **extra})

    vae.train()
    losses: list[float] = []
    while step < VAE_STEPS and not budget.expired():
        world2 = step >= WORLD2_FROM
        outline = 0.2 if world2 else 0.4 if step >= _BASE_STEPS else 0.0
        batch = make_batch(seed, step, _BATCH, striped_fraction=0.1, outline_fraction=outline, stream=_STREAM)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        for group in opt.param_groups:
            group["lr"] = _lr(step)
        encoder_final = _W2_ENCODER_UNTIL if world2 else _BASE_STEPS - _DECODER_STEPS
        decoder_only = step >= encoder_final
        if decoder_only:
            with torch.no_grad():
                z = vae.encode(batch.images).latent_dist.mean
            recon = vae.decode(z).sample
            kl = torch.zeros(())
        else:
            dist = vae.encode(batch.images).latent_dist
            z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=gen)
            recon = vae.decode(z).sample
            kl = dist.kl().mean()
        diff = recon - batch.images
        weight = 1.0 + 4.0 * torch.from_numpy(batch.masks[:, None].astype("float32"))
        if step >= SHAPES_FROM:
            weight = weight + _BAND * outline_band(batch.masks)
        error = diff.pow(2) + 0.5 * diff.abs()
        loss = (error * weight).mean() / weight.mean() + _KL * kl
        if step >= _REFINE_FROM:
            loss = loss + _EDGE * edge_loss(recon, batch.images)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 100 == 0:
            vae.eval()
            mse, color, background, shape = _evaluate(vae, seed)
            vae.train()
            log.info("vae step %d loss %.4f eval mse %.4f colour %.0f%% background %.0f%% shape %.0f%%", step,
                     np.mean(losses), mse, color * 100, background * 100, shape * 100)  # fmt: skip
            losses.clear()
        if scaling is None and step >= encoder_final and (step >= _W2_ENCODER_UNTIL or not world2):
            vae.eval()
            scaling = _scaling_factor(vae, seed)
            vae.train()
            log.info("vae: encoder final at step %d, scaling_factor %.4f", step, scaling)
        if budget.save_due():
            save()
    save()
    return step >= VAE_STEPS


def load_vae(state: Path) -> torch.nn.Module:
    """The trained VAE (eval mode, scaling factor restored)."""
    ckpt = load_checkpoint(state / "vae.pt")
    if ckpt is None or "config" not in ckpt or ckpt["step"] < VAE_STEPS:
        raise RuntimeError(f"The VAE stage is not finished in {state}; run the 'vae' stage first.")
    vae = build_vae(scaling_factor=float(ckpt["config"]["scaling_factor"]))
    vae.load_state_dict(ckpt["model"])
    return vae.eval()
