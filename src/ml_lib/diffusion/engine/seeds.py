"""Initial noise as AUTOMATIC1111 draws it (modules/rng.py, ``ImageRNG.first``): variation seeds and seed
resize, and the seeds of each batch of a batch count.

Per image of shape (C, H, W): the base noise comes from a CPU generator seeded with the image's seed (the
same draw diffusers makes from that generator, so the plain path is unchanged); with a variation strength
the variation seed's noise is slerped in with A1111's ``slerp`` (norms over dim 1 of the per-image
tensor, its lerp fallback included); with "Seed resize from" WxH the noise is drawn at that size and
pasted centred into noise of the real size drawn from the image's generator, which then goes on to the
sampler (A1111's generator is advanced the same way).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..plan import GenerationPlan, VariationPlan

__all__ = ["batches", "image_noise", "initial_noise", "slerp"]


def batches(plan: GenerationPlan) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(seeds, variation seeds) of each batch of ``plan``, in order (A1111's ``n_iter`` loop)."""
    size = plan.batch_size
    seeds, subseeds = plan.seeds, plan.subseeds
    for n in range(plan.batch_count):
        yield seeds[n * size : (n + 1) * size], subseeds[n * size : (n + 1) * size]


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's spherical interpolation of two noise tensors of one image (``val`` 0 → ``low``)."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)  # A1111's fallback, weights as it writes them
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(
        1
    ) * high


def _randn(seed: int, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    gen = generator if generator is not None else torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=gen, device="cpu")


def image_noise(
    shape: tuple[int, int, int],
    seed: int,
    subseed: int | None,
    variation: VariationPlan | None,
    generator: torch.Generator,
    factor: int = 8,
) -> torch.Tensor:
    """The initial noise of one image, drawn as A1111 does; ``generator`` is seeded with ``seed`` and is
    left where A1111 leaves it for the sampler; ``factor`` is the VAE's image pixels per latent pixel."""
    noise_shape = shape
    if variation is not None and variation.resize_width > 0 and variation.resize_height > 0:
        noise_shape = (shape[0], variation.resize_height // factor, variation.resize_width // factor)
    strength = variation.strength if variation is not None else 0.0
    subnoise = _randn(subseed or 0, noise_shape) if strength != 0 else None
    noise = _randn(seed, noise_shape) if noise_shape != shape else _randn(seed, shape, generator)
    if subnoise is not None:
        noise = slerp(strength, noise, subnoise)
    if noise_shape != shape:
        x = _randn(seed, shape, generator)
        dx = (shape[2] - noise_shape[2]) // 2
        dy = (shape[1] - noise_shape[1]) // 2
        w = noise_shape[2] if dx >= 0 else noise_shape[2] + 2 * dx
        h = noise_shape[1] if dy >= 0 else noise_shape[1] + 2 * dy
        tx, ty = max(dx, 0), max(dy, 0)
        dx, dy = max(-dx, 0), max(-dy, 0)
        x[:, ty : ty + h, tx : tx + w] = noise[:, dy : dy + h, dx : dx + w]
        noise = x
    return noise


def initial_noise(
    plan: GenerationPlan,
    shape: tuple[int, int, int],
    seeds: tuple[int, ...],
    subseeds: tuple[int, ...],
    generators: list[torch.Generator],
    factor: int = 8,
) -> torch.Tensor:
    """The (batch, C, H, W) initial noise of one batch of ``plan`` (float32, CPU)."""
    subs = [subseeds[i] if i < len(subseeds) else None for i in range(len(seeds))]
    noises = [
        image_noise(shape, s, subs[i], plan.variation, generators[i], factor) for i, s in enumerate(seeds)
    ]
    return torch.stack(noises)
