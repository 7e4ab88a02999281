"""The SDXL refiner hand-off: the base stops at ``denoising_end`` and returns latents, the refiner (an
SDXL img2img pipeline) goes on from ``denoising_start`` at the same point of the same schedule, as
diffusers documents its "ensemble of expert denoisers" and as A1111 switches checkpoints mid-sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from ..catalog.families import Family
from ..plan import GenerationPlan
from ..planning.hires import hires_schedule
from ..samplers import SamplerChoice
from .conditioning import encode_sdxl
from .hires_refiner import hires_choice
from .schedulers import make_scheduler
from .variants import pipeline_view

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["base_handoff", "refine"]


def base_handoff(plan: GenerationPlan) -> dict[str, Any]:
    """What the base pipeline's first pass adds so that it stops where the refiner takes over (nothing
    with the hires fix: the refiner takes over inside the hires pass, :mod:`.hires_refiner`)."""
    if plan.refiner is None or plan.hires is not None:
        return {}
    return {"denoising_end": plan.refiner.switch_at}


def _pass(plan: GenerationPlan) -> tuple[int, SamplerChoice, str, str]:
    """(steps of the schedule, sampler, prompt, negative prompt) of the pass the refiner finishes: the
    first pass, or the hires pass (its ``steps / denoise`` schedule, sampler and prompts)."""
    if plan.hires is None:
        return plan.steps, SamplerChoice(plan.sampler, plan.schedule), plan.prompt, plan.negative_prompt
    total, _strength = hires_schedule(plan.steps, plan.hires)
    prompt = plan.hires.prompt or plan.prompt
    return total, hires_choice(plan), prompt, plan.hires.negative_prompt or plan.negative_prompt


def _refiner_pipe(loaded: LoadedPipeline, family: str) -> Any:
    """The refiner's img2img pipeline: the refiner itself (loaded as img2img), or an img2img view of an
    SDXL base used as one."""
    if Family(family) is Family.SDXL_REFINER:
        return loaded.pipe
    return pipeline_view(loaded, "img2img")


def refine(
    loaded: LoadedPipeline,
    plan: GenerationPlan,
    latents: torch.Tensor,
    generators: list[torch.Generator],
    *,
    step_end: Callable[..., dict[str, Any]],
    device: torch.device,
) -> tuple[Any, torch.Tensor]:
    """(the refiner pipeline, its latents) after it denoised the base's ``latents`` from the switch point
    (of the first pass, or of the hires pass when the plan has the hires fix)."""
    assert plan.refiner is not None
    pipe = _refiner_pipe(loaded, plan.refiner.model.family)
    steps, choice, prompt, negative = _pass(plan)
    key = (choice, plan.refiner.model.prediction_type)
    if loaded.scheduler != key:
        if loaded.base_scheduler_config is None:
            loaded.base_scheduler_config = dict(loaded.pipe.scheduler.config)
        loaded.pipe.scheduler = make_scheduler(choice, loaded.base_scheduler_config, key[1])
        loaded.scheduler = key
    pipe.scheduler = loaded.pipe.scheduler
    embeds = encode_sdxl(
        pipe,
        prompt,
        negative,
        batch=latents.shape[0],
        clip_skip=plan.clip_skip,
        cfg=plan.cfg_scale > 1.0,
        device=device,
    )
    out = pipe(
        **embeds,
        image=latents,
        num_inference_steps=steps,
        denoising_start=plan.refiner.switch_at,
        guidance_scale=plan.cfg_scale,
        generator=generators,
        output_type="latent",
        callback_on_step_end=step_end,
    ).images
    return pipe, out
