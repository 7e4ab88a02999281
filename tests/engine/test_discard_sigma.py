"""DPM2, DPM2 a and DPM++ 3M SDE run A1111's noise levels: ``steps + 1`` of the schedule, the penultimate
one dropped.

A1111 (``sd_samplers_kdiffusion.py``) marks these samplers ``discard_next_to_last_sigma``; its
``get_sigmas(p, steps)`` computes ``steps + 1`` sigmas plus the final 0 and keeps ``sigmas[:-2] +
sigmas[-1:]``. The expected levels are written out here from k-diffusion's formulas (``get_sigmas_karras``;
``DiscreteSchedule.get_sigmas``, which interpolates log-sigma between training steps where diffusers
interpolates sigma, hence the looser tolerance for Uniform) over the model's training schedule.
"""

from __future__ import annotations

import json
import math
from importlib import resources

import diffusers
import numpy as np
import pytest
import torch

from ml_lib.diffusion.engine.discard_sigma import rebuild_kdpm2, rebuild_kdpm2_ancestral, step_levels
from ml_lib.diffusion.engine.schedulers import make_scheduler
from ml_lib.diffusion.samplers import SAMPLERS, SamplerChoice

SD1 = json.loads(
    resources.files("ml_lib.diffusion.assets")
    .joinpath("configs/sd1/scheduler/scheduler_config.json")
    .read_text()
)


def training_sigmas() -> np.ndarray:
    betas = np.linspace(SD1["beta_start"] ** 0.5, SD1["beta_end"] ** 0.5, 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


def a1111_levels(schedule: str, steps: int) -> np.ndarray:
    """A1111's DPM2 sigmas for ``steps`` (``get_sigmas`` with ``discard_next_to_last_sigma``)."""
    sigmas = training_sigmas()
    n = steps + 1
    if schedule == "Karras":  # k_diffusion.sampling.get_sigmas_karras, rho 7, the model's sigma range
        ramp = np.linspace(0, 1, n)
        lo, hi = sigmas[0] ** (1 / 7), sigmas[-1] ** (1 / 7)
        levels = (hi + ramp * (lo - hi)) ** 7
    else:  # k_diffusion.external.DiscreteSchedule.get_sigmas: log-sigma interpolated at linspace(999, 0, n)
        t = np.linspace(len(sigmas) - 1, 0, n)
        low = np.floor(t).astype(int)
        high = np.ceil(t).astype(int)
        w = t - low
        levels = np.exp((1 - w) * np.log(sigmas[low]) + w * np.log(sigmas[high]))
    full = np.concatenate([levels, [0.0]])
    return np.concatenate([full[:-2], full[-1:]])


@pytest.mark.parametrize("sampler", ["DPM2", "DPM2 a"])
@pytest.mark.parametrize("schedule", ["Karras", "Uniform"])
@pytest.mark.parametrize("steps", [3, 10, 20])
def test_dpm2_runs_a1111_levels(sampler: str, schedule: str, steps: int) -> None:
    scheduler = make_scheduler(SamplerChoice(sampler, schedule), SD1, "epsilon")
    scheduler.set_timesteps(steps)
    levels, _timesteps = step_levels(scheduler)
    expected = a1111_levels(schedule, steps)
    assert len(levels) == steps + 1 and scheduler.num_inference_steps == steps
    rtol = 1e-5 if schedule == "Karras" else 2e-3
    np.testing.assert_allclose(levels.double().numpy(), expected, rtol=rtol, atol=1e-6)
    assert len(scheduler.timesteps) == 2 * steps - 1  # k-diffusion: one call on the last step, to sigma 0
    plain = getattr(diffusers, type(scheduler).__mro__[1].__name__).from_config(scheduler.config)
    plain.set_timesteps(steps)
    assert not torch.allclose(step_levels(plain)[0], levels)  # diffusers' own levels are another list


def test_first_img2img_level_is_comfyuis_dpm_2() -> None:
    """The issue's case, 20 steps at strength 0.6 (Karras): diffusers' cut starts at 2.23, not 1.99."""
    scheduler = make_scheduler(SamplerChoice("DPM2", "Karras"), SD1, "epsilon")
    scheduler.set_timesteps(20)
    start = (20 - int(20 * 0.6)) * scheduler.order
    assert math.isclose(float(scheduler.sigmas[start]), 2.232, abs_tol=5e-4)


@pytest.mark.parametrize(
    ("cls", "rebuild", "keys"),
    [
        (diffusers.KDPM2DiscreteScheduler, rebuild_kdpm2, ("sigmas", "sigmas_interpol", "timesteps")),
        (
            diffusers.KDPM2AncestralDiscreteScheduler,
            rebuild_kdpm2_ancestral,
            ("sigmas", "sigmas_interpol", "sigmas_up", "sigmas_down", "timesteps"),
        ),
    ],
)
@pytest.mark.parametrize(
    "options", [{}, {"use_karras_sigmas": True}, {"use_exponential_sigmas": True}, {"use_beta_sigmas": True}]
)
@pytest.mark.parametrize("steps", [2, 7, 20])
def test_rebuild_reproduces_diffusers_from_its_own_levels(
    cls: type, rebuild: object, keys: tuple[str, ...], options: dict[str, bool], steps: int
) -> None:
    scheduler = cls.from_config({**SD1, "timestep_spacing": "linspace", **options})
    scheduler.set_timesteps(steps)
    theirs = {key: getattr(scheduler, key).clone() for key in keys}
    levels, timesteps = step_levels(scheduler)
    rebuild(scheduler, levels.clone(), timesteps.clone())  # type: ignore[operator]
    for key in keys:
        torch.testing.assert_close(getattr(scheduler, key), theirs[key], rtol=0, atol=0, equal_nan=True)


def a1111_exponential(steps: int) -> np.ndarray:
    """A1111's DPM++ 3M SDE sigmas for ``steps`` on its default schedule: k_diffusion's
    ``get_sigmas_exponential(steps + 1, sigma_min, sigma_max)`` (the model's range), the penultimate
    dropped."""
    sigmas = training_sigmas()
    levels = np.exp(np.linspace(np.log(sigmas[-1]), np.log(sigmas[0]), steps + 1))
    full = np.concatenate([levels, [0.0]])
    return np.concatenate([full[:-2], full[-1:]])


@pytest.mark.parametrize("steps", [1, 3, 10, 20])
@pytest.mark.parametrize("schedule", ["Exponential", "Karras"])
def test_dpmpp_3m_sde_runs_a1111_levels(schedule: str, steps: int) -> None:
    """A1111 (>= 1.6) marks DPM++ 3M SDE ``discard_next_to_last_sigma`` in sd_samplers_kdiffusion.py:
    ``('DPM++ 3M SDE', 'sample_dpmpp_3m_sde', ['k_dpmpp_3m_sde'], {'scheduler': 'exponential',
    'discard_next_to_last_sigma': True, "brownian_noise": True})``."""
    scheduler = make_scheduler(SamplerChoice("DPM++ 3M SDE", schedule), SD1, "epsilon")
    scheduler.set_timesteps(steps)
    expected = a1111_exponential(steps) if schedule == "Exponential" else a1111_levels("Karras", steps)
    assert scheduler.num_inference_steps == steps and len(scheduler.timesteps) == steps
    np.testing.assert_allclose(scheduler.sigmas.double().numpy(), expected, rtol=1e-5, atol=1e-6)
    # each step's timestep is the one diffusers gives that level in its own steps + 1 schedule
    plain = diffusers.DPMSolverMultistepScheduler.from_config(scheduler.config)
    plain.set_timesteps(steps + 1)
    assert torch.equal(scheduler.timesteps, plain.timesteps[:-1])
    plain.set_timesteps(steps)
    if steps > 1:  # one step is (sigma_max, 0) either way
        assert not torch.allclose(plain.sigmas, scheduler.sigmas)  # diffusers' own levels are another list


def test_dpmpp_3m_sde_denoises_on_the_discarded_levels() -> None:
    """A whole run steps through every kept level down to 0 (the scheduler's step index reaches the end)."""
    scheduler = make_scheduler(SamplerChoice("DPM++ 3M SDE", "Exponential"), SD1, "epsilon")
    scheduler.set_timesteps(5)
    sample = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = torch.zeros_like(sample)  # a model that predicts no noise: x0 = the sample
        sample = scheduler.step(eps, t, sample, generator=torch.Generator().manual_seed(1)).prev_sample
    assert scheduler.step_index == 5 and torch.isfinite(sample).all()


def test_only_a1111s_discarding_samplers_discard() -> None:
    discarding = {name for name, spec in SAMPLERS.items() if spec.discard_penultimate_sigma}
    assert discarding == {"DPM2", "DPM2 a", "DPM++ 3M SDE"}
    for name in ("Euler", "Heun", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M"):
        scheduler = make_scheduler(SamplerChoice(name, SAMPLERS[name].default_schedule), SD1, "epsilon")
        assert type(scheduler) is getattr(diffusers, SAMPLERS[name].scheduler_class)
