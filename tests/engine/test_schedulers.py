"""Every A1111 sampler/schedule pair we list builds the diffusers scheduler it promises."""

from __future__ import annotations

import diffusers
import pytest

from ml_lib.diffusion.engine.schedulers import make_scheduler
from ml_lib.diffusion.samplers import SAMPLERS, SamplerChoice, scheduler_recipe

SD_CONFIG = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}
PAIRS = [SamplerChoice(name, sched) for name, spec in SAMPLERS.items() for sched in spec.schedules]


@pytest.mark.parametrize("choice", PAIRS, ids=lambda c: f"{c.sampler}-{c.schedule}")
def test_pair_builds_and_sets_timesteps(choice: SamplerChoice) -> None:
    scheduler = make_scheduler(choice, SD_CONFIG, "epsilon")
    recipe = scheduler_recipe(choice)
    assert isinstance(scheduler, getattr(diffusers, recipe.class_name))  # DPM2's: a subclass
    for key, value in recipe.kwargs:
        assert scheduler.config[key] == value, key
    assert scheduler.config.beta_schedule == "scaled_linear"
    scheduler.set_timesteps(10)
    assert len(scheduler.timesteps) >= 10


def test_schedules_change_the_sigmas() -> None:
    def sigmas(schedule: str) -> list[float]:
        s = make_scheduler(SamplerChoice("DPM++ 2M", schedule), SD_CONFIG, "epsilon")
        s.set_timesteps(10)
        return [round(float(x), 4) for x in s.sigmas]

    assert len({tuple(sigmas(name)) for name in ("Uniform", "Karras", "Exponential", "Beta")}) == 4


def test_prediction_type_is_kept_and_model_options_do_not_leak() -> None:
    base = {**SD_CONFIG, "use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"}
    scheduler = make_scheduler(SamplerChoice("DPM++ 2M", "Uniform"), base, "v_prediction")
    assert scheduler.config.prediction_type == "v_prediction"
    assert scheduler.config.use_karras_sigmas is False
    assert scheduler.config.algorithm_type == "dpmsolver++"
