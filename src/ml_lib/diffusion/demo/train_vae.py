"""Stage ``vae``: train the demo AutoencoderKL on world images, then fine-tune its decoder on latent means.

Loss: MSE + 0.5·L1 on pixels in [-1, 1] (object pixels weighted 5x) plus a tiny KL term; 10% of images
carry the stripe style. Steps 850-1000 freeze the encoder and decode the latent means (what the UNet is
trained on); steps 1000-1200 go on decoder-only with 40% outline-style images, so the decoder draws the
style LoRA's outlines (the encoder, hence every latent the UNet sees, is unchanged by them). At the end
the latent scaling factor (1 / std) is measured and stored.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .analysis import analyse
from .model import build_vae
from .train_common import Budget, load_checkpoint, make_batch, save_checkpoint, stage_logger

__all__ = ["VAE_STEPS", "load_vae", "train_vae"]

VAE_STEPS = 1200
_BASE_STEPS = 1000  # the autoencoder proper; then the decoder learns the outline style
_DECODER_STEPS = 150
_BATCH = 16
_LR = 1e-3
_KL = 1e-6
_STYLE_LR = 3e-4
_STREAM = 1

log = stage_logger("vae")


def _lr(step: int) -> float:
    if step >= _BASE_STEPS:
        return _STYLE_LR
    warm = min(1.0, (step + 1) / 100)
    return _LR * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / _BASE_STEPS))))


@torch.no_grad()
def _evaluate(vae: torch.nn.Module, seed: int) -> tuple[float, float]:
    """Reconstruction MSE and colour accuracy on 48 held-out scenes."""
    batch = make_batch(seed, 0, 48, split="eval", stream=99)
    recon = vae.decode(vae.encode(batch.images).latent_dist.mean).sample.clamp(-1, 1)
    mse = float((recon - batch.images).pow(2).mean())
    pixels = ((recon + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    right = sum(analyse(p).color == s.color for p, s in zip(pixels, batch.scenes, strict=True))
    return mse, right / len(batch.scenes)


def train_vae(state: Path, budget: Budget, *, seed: int = 0) -> bool:
    """Train (or resume) the VAE until :data:`VAE_STEPS`; True when the stage is complete."""
    path = state / "vae.pt"
    ckpt = load_checkpoint(path)
    if ckpt is not None and ckpt["step"] >= VAE_STEPS:
        return True
    torch.manual_seed(seed)
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=_LR, weight_decay=0.0)
    step = 0
    if ckpt is not None:
        vae.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        step = ckpt["step"]
        log.info("vae: resumed at step %d", step)

    def save() -> None:
        save_checkpoint(path, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step})

    vae.train()
    losses: list[float] = []
    while step < VAE_STEPS and not budget.expired():
        outline = 0.4 if step >= _BASE_STEPS else 0.0
        batch = make_batch(seed, step, _BATCH, striped_fraction=0.1, outline_fraction=outline, stream=_STREAM)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        for group in opt.param_groups:
            group["lr"] = _lr(step)
        decoder_only = step >= _BASE_STEPS - _DECODER_STEPS
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
        error = diff.pow(2) + 0.5 * diff.abs()
        loss = (error * weight).mean() / weight.mean() + _KL * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 100 == 0:
            vae.eval()
            mse, color = _evaluate(vae, seed)
            vae.train()
            log.info(
                "vae step %d loss %.4f eval mse %.4f colour %.0f%%", step, np.mean(losses), mse, color * 100
            )
            losses.clear()
        if budget.save_due():
            save()
    if step >= VAE_STEPS:
        vae.eval()
        with torch.no_grad():
            batch = make_batch(seed, 0, 256, striped_fraction=0.1, stream=98)
            z = vae.encode(batch.images).latent_dist.mean
        vae.register_to_config(scaling_factor=float(1.0 / z.std()))
        log.info("vae done: scaling_factor %.4f", vae.config.scaling_factor)
    save_checkpoint(
        path,
        {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step, "config": dict(vae.config)},
    )
    return step >= VAE_STEPS


def load_vae(state: Path) -> torch.nn.Module:
    """The trained VAE (eval mode, scaling factor restored)."""
    ckpt = load_checkpoint(state / "vae.pt")
    if ckpt is None or "config" not in ckpt or ckpt["step"] < VAE_STEPS:
        raise RuntimeError(f"The VAE stage is not finished in {state}; run the 'vae' stage first.")
    vae = build_vae(scaling_factor=float(ckpt["config"]["scaling_factor"]))
    vae.load_state_dict(ckpt["model"])
    return vae.eval()
