"""Shared pieces of the demo training stages: batches from the world, checkpoints, time budget, logging.

Every batch is a pure function of (seed, stage, step), so a stage resumed from a checkpoint sees exactly
the data it would have seen in one run. Checkpoints are written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .world import (
    POSITIONS,
    Split,
    Style,
    captions,
    is_held_out,
    render,
    sample_control_scene,
    sample_scene,
)

__all__ = [
    "Batch",
    "Budget",
    "load_checkpoint",
    "loss_weight",
    "make_batch",
    "optimizer_step",
    "save_checkpoint",
    "stage_logger",
]

CHECKPOINT_EVERY_S = 180.0


@dataclass(frozen=True, slots=True)
class Batch:
    """Images in [-1, 1] (N, 3, 64, 64), one caption per image, object masks (N, 64, 64) bool."""

    images: torch.Tensor
    captions: tuple[str, ...]
    masks: np.ndarray
    scenes: tuple[Any, ...]


def make_batch(
    seed: int,
    step: int,
    size: int,
    *,
    split: Split = "train",
    striped_fraction: float = 0.0,
    outline_fraction: float = 0.0,
    neutral_fraction: float = 0.0,
    control: bool = False,
    stream: int = 0,
) -> Batch:
    """The deterministic batch number ``step`` of a stage (``stream`` separates stages' data).

    Each image is striped with probability ``striped_fraction``, else outlined with ``outline_fraction``;
    its caption leaves the position unsaid with probability ``neutral_fraction`` (and the object is then in
    the middle, the world's prior). ``control``: objects
    anywhere (:func:`~.world.sample_control_scene`), captions saying no position (40%), another position
    (30%) or the nearest one (30%), so a ControlNet learns to follow its mask whatever the caption says.
    """
    rng = np.random.default_rng([seed, stream, step])
    scene_seeds = rng.integers(0, 2**62, size=size)
    striped = rng.random(size) < striped_fraction
    outlined = rng.random(size) < outline_fraction if outline_fraction > 0 else np.zeros(size, dtype=bool)
    images, texts, masks, scenes = [], [], [], []
    for scene_seed, is_striped, is_outlined in zip(scene_seeds, striped, outlined, strict=True):
        style: Style = "striped" if is_striped else "outline" if is_outlined else "plain"
        scene = (
            sample_control_scene(int(scene_seed))
            if control
            else sample_scene(int(scene_seed), split, style=style)
        )
        said: str | None = scene.position
        draw = rng.random()
        if control:
            others = [p for p in POSITIONS if p != scene.position]
            said = None if draw < 0.4 else others[int(rng.integers(len(others)))] if draw < 0.7 else said
        elif draw < neutral_fraction and not is_held_out(
            scene.shape, scene.color, "center", scene.background
        ):
            # An unsaid position means the middle: the prior people expect, and the one inpainting's
            # "only masked" crop relies on to put the object inside the mask.
            scene, said = dataclasses.replace(scene, position="center"), None
        rendered = render(scene)
        images.append(rendered.image)
        options = captions(scene, position=said)
        texts.append(options[int(rng.integers(len(options)))])
        masks.append(rendered.mask)
        scenes.append(rendered.scene)
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return Batch(images=pixels, captions=tuple(texts), masks=np.stack(masks), scenes=tuple(scenes))


class Budget:
    """A wall-clock budget for one invocation, and a clock for periodic checkpoints."""

    def __init__(self, minutes: float) -> None:
        self.deadline = time.monotonic() + minutes * 60.0
        self._last_save = time.monotonic()

    def expired(self) -> bool:
        """Whether the invocation's time is up."""
        return time.monotonic() >= self.deadline

    def stop(self) -> None:
        """End the budget now (a SIGTERM handler calls this so the stage saves and returns)."""
        self.deadline = time.monotonic()

    def save_due(self) -> bool:
        """True every :data:`CHECKPOINT_EVERY_S` seconds (and resets the clock)."""
        if time.monotonic() - self._last_save >= CHECKPOINT_EVERY_S:
            self._last_save = time.monotonic()
            return True
        return False


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``, or ``None`` when there is none (our own files, hence weights_only=False)."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def stage_logger(name: str) -> logging.Logger:
    """The logger of a training stage (handlers are configured by the script)."""
    return logging.getLogger(f"demo_kit.{name}")


def loss_weight(snr: Any, gamma: float = 5.0, x0_floor: float = 0.0) -> Any:
    """Per-sample weight of the ε loss: min-SNR-``gamma``, with an optional floor in x0 space.

    The ε loss is snr x the x0 loss, so min-SNR's x0-space weight min(snr, gamma) all but vanishes at the
    high noise levels where an object's place is decided; ``x0_floor`` keeps it at least that.
    """
    import torch

    return torch.clamp(torch.clamp(snr, max=gamma), min=x0_floor) / snr


def optimizer_step(opt: Any, loss: Any, params: Any, lr: float, *, max_norm: float = 1.0) -> float:
    """One AdamW step at learning rate ``lr`` with gradient clipping; the loss as a float."""
    import torch

    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()
    return float(loss.detach())
