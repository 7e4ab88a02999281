"""A1111's variation noise for passes that start from an image: img2img, inpaint and the hires fix.

A1111 noises the init latents with ``ImageRNG.first()`` (variation seed slerped in, seed resize pasted
centred, :mod:`.seeds`), as it does in txt2img. diffusers' img2img and inpaint pipelines draw their own
noise and hand it to ``scheduler.add_noise`` (at the start, and for inpainting's kept area at every step),
so the pass runs with a copy of its scheduler whose ``add_noise`` takes A1111's noise instead: the
pipeline's own draws still happen (and are discarded), so its generators — and every later draw of an
ancestral sampler — stay where the plain path leaves them. Inpainting at strength 1 starts from pure noise
without ``add_noise``; there the noise goes in as ``latents``, which diffusers' inpainting takes as its noise.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..plan import GenerationPlan
from .seeds import initial_noise

__all__ = ["given_noise", "image_pass_noise", "with_noise"]


class _GivenNoise:
    """Mixin of a scheduler whose ``add_noise`` uses :attr:`given_noise` (set by :func:`with_noise`)."""

    given_noise: torch.Tensor

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> Any:
        given = self.given_noise
        if given.shape != noise.shape:
            raise RuntimeError(f"variation noise of shape {tuple(given.shape)} for {tuple(noise.shape)}")
        return super().add_noise(original_samples, given.to(noise), timesteps)  # type: ignore[misc]


@functools.cache
def _given_noise_class(cls: Any) -> Any:
    # Same name as the scheduler's class, so its config (``_class_name``) reads without a warning.
    return type(cls.__name__, (_GivenNoise, cls), {"__module__": __name__})


def with_noise(scheduler: Any, noise: torch.Tensor) -> Any:
    """A new scheduler of ``scheduler``'s class and config whose ``add_noise`` uses ``noise``."""
    cls: Any = type(scheduler)
    out = _given_noise_class(cls).from_config(scheduler.config)
    out.given_noise = noise
    return out


@contextmanager
def given_noise(view: Any, noise: torch.Tensor) -> Iterator[None]:
    """While the block runs, ``view`` noises its init latents with ``noise`` (see :func:`with_noise`)."""
    previous = view.scheduler
    view.scheduler = with_noise(previous, noise)
    try:
        yield
    finally:
        view.scheduler = previous


def image_pass_noise(
    plan: GenerationPlan,
    shape: tuple[int, int, int],
    seeds: tuple[int, ...],
    subseeds: tuple[int, ...],
    factor: int,
) -> torch.Tensor:
    """A1111's first noise of a batch for a pass starting from an image, on latents of ``shape`` (C, H, W);
    drawn from generators of its own (the pipeline's stay with the pipeline)."""
    generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
    return initial_noise(plan, shape, seeds, subseeds, generators, factor)
