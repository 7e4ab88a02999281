"""The SDXL refiner inside the hires fix's second pass, as A1111 runs it by default ("Hires fix: which pass
to enable refiner for": ``second pass``): the first pass is the base's alone; in the hires pass the base
denoises down to the switch point (``denoising_end`` on the img2img view, with the pass's strength) and
the refiner goes on from there in latent space (``denoising_start`` over the same ``steps / denoise``
schedule, :func:`.refiner.refine`). The switch is A1111's timestep test, as for a plain refiner: timesteps
below ``round(1000 x (1 - switch))`` are the refiner's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import RequestError
from ..plan import GenerationPlan, ModelRef
from ..planning.hires import hires_schedule
from ..samplers import SamplerChoice
from .schedulers import make_scheduler

if TYPE_CHECKING:
    from .pool import LoadedPipeline

__all__ = ["hires_choice", "hires_handoff", "hires_model"]


def hires_choice(plan: GenerationPlan) -> SamplerChoice:
    """The hires pass's sampler and schedule (the first pass's where the plan names none)."""
    hires = plan.hires
    assert hires is not None
    return SamplerChoice(hires.sampler or plan.sampler, hires.schedule or plan.schedule)


def hires_model(plan: GenerationPlan) -> ModelRef:
    """The model the hires pass runs on: the plan's hires checkpoint, else its model."""
    checkpoint = plan.hires.checkpoint if plan.hires is not None else None
    return checkpoint or plan.model


def hires_handoff(loaded: LoadedPipeline, plan: GenerationPlan) -> float | None:
    """``denoising_end`` of the base's part of the hires pass when the plan's refiner takes over inside
    it; None when the pass ends before the switch point (the refiner never runs, as in A1111).
    RequestError when the pass starts past it (it would be the refiner's alone, which diffusers'
    ``denoising_start`` cannot express with a partial strength). ``loaded`` is the model the hires pass
    runs on (the hires checkpoint's, or the first pass's)."""
    hires, refiner = plan.hires, plan.refiner
    assert hires is not None and refiner is not None
    total, strength = hires_schedule(plan.steps, hires)
    config = loaded.base_scheduler_config or dict(loaded.pipe.scheduler.config)
    scheduler = make_scheduler(hires_choice(plan), config, hires_model(plan).prediction_type)
    scheduler.set_timesteps(total)
    steps = int(total * strength)  # diffusers' img2img: the last ``steps`` of the schedule
    timesteps = scheduler.timesteps[(total - steps) * scheduler.order :]
    train = int(scheduler.config.num_train_timesteps)
    cutoff = round(train - refiner.switch_at * train)
    if float(timesteps[0]) < cutoff:
        raise RequestError(
            f"The hires pass starts below the refiner's switch point ({refiner.switch_at:g}): its "
            f"denoise {hires.denoise:g} would run on the refiner alone. Raise --hires-denoise above "
            f"{1 - refiner.switch_at:g} or lower --refiner-switch."
        )
    if float(timesteps[-1]) >= cutoff:
        return None
    return refiner.switch_at
