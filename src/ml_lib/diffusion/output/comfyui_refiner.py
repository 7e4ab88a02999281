"""The SDXL refiner hand-off as ComfyUI core nodes: the base ``KSamplerAdvanced`` stops at the switch step
with its leftover noise, the refiner's (its own checkpoint and text encodes) continues from there without
adding noise, as diffusers' ``denoising_end`` / ``denoising_start`` do and ComfyUI's SDXL refiner example
wires it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from ..plan import GenerationPlan

__all__ = ["add_refiner", "switch_step"]

Link = list[Any]


def switch_step(plan: GenerationPlan) -> int:
    """The step where the refiner takes over (A1111's ``Refiner switch at`` of the plan's steps)."""
    assert plan.refiner is not None
    return max(1, min(plan.steps, round(plan.steps * plan.refiner.switch_at)))


def add_refiner(
    add: Callable[..., str],
    plan: GenerationPlan,
    seed: int,
    sampler: tuple[str, str],
    base: tuple[Link, Link, Link, Link],
    texts: tuple[str, str],
) -> tuple[Link, Link]:
    """The two sampler passes; ``base`` is (model, positive, negative, latent) of the base, ``texts`` the
    prompts as CLIPTextEncode reads them. Returns (the final latent, the refiner's VAE)."""
    assert plan.refiner is not None
    model, positive, negative, latent = base
    switch = switch_step(plan)
    common = {"steps": plan.steps, "cfg": plan.cfg_scale, "sampler_name": sampler[0], "scheduler": sampler[1]}
    first = add(
        "KSamplerAdvanced",
        "Base (until the refiner's switch)",
        model=model,
        add_noise="enable",
        noise_seed=seed,
        positive=positive,
        negative=negative,
        latent_image=latent,
        start_at_step=0,
        end_at_step=switch,
        return_with_leftover_noise="enable",
        **common,
    )
    ref = plan.refiner.model
    name = PurePath(ref.reference.replace("\\", "/")).name or ref.name
    loader = add("CheckpointLoaderSimple", "Load Refiner", ckpt_name=name)
    pos = add("CLIPTextEncode", "Refiner positive prompt", text=texts[0], clip=[loader, 1])
    neg = add("CLIPTextEncode", "Refiner negative prompt", text=texts[1], clip=[loader, 1])
    second = add(
        "KSamplerAdvanced",
        "Refiner",
        model=[loader, 0],
        add_noise="disable",
        noise_seed=seed,
        positive=[pos, 0],
        negative=[neg, 0],
        latent_image=[first, 0],
        start_at_step=switch,
        end_at_step=10000,
        return_with_leftover_noise="disable",
        **common,
    )
    return [second, 0], [loader, 2]
