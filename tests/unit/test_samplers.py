"""A1111 sampler names in both infotext forms, and the diffusers recipe behind each."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.errors import UnknownSamplerError
from ml_lib.diffusion.samplers import SAMPLERS, SamplerChoice, parse_sampler, scheduler_recipe, split_sampler

REQUIRED = [
    "Euler", "Euler a", "Heun", "LMS", "DPM2", "DPM2 a", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ SDE",
    "DPM++ 3M", "DDIM", "UniPC", "DEIS", "LCM", "TCD",
]  # fmt: skip


def test_required_samplers_are_known() -> None:
    assert set(REQUIRED) <= set(SAMPLERS)


@pytest.mark.parametrize(
    ("legacy", "sampler", "schedule"),
    [
        ("DPM++ 2M Karras", "DPM++ 2M", "Karras"),
        ("DPM++ 2M SDE Exponential", "DPM++ 2M SDE", "Exponential"),
        ("DPM++ SDE Karras", "DPM++ SDE", "Karras"),
        ("LMS Karras", "LMS", "Karras"),
        ("DPM2 a Karras", "DPM2 a", "Karras"),
        ("euler a", "Euler a", "Uniform"),
        ("k_dpmpp_2m", "DPM++ 2M", "Karras"),
        ("dpmpp_2m_sde", "DPM++ 2M SDE", "Exponential"),
    ],
)
def test_pre_19_names(legacy: str, sampler: str, schedule: str) -> None:
    assert parse_sampler(legacy) == SamplerChoice(sampler, schedule)


def test_19_pair_equals_legacy_form() -> None:
    assert parse_sampler("DPM++ 2M", "Karras") == parse_sampler("DPM++ 2M Karras")
    assert parse_sampler("DPM++ 2M Karras", "Automatic") == SamplerChoice("DPM++ 2M", "Karras")


def test_automatic_resolves_to_a1111_default() -> None:
    assert parse_sampler("DPM++ 2M", "Automatic").schedule == "Karras"
    assert parse_sampler("DPM++ 2M SDE").schedule == "Exponential"
    assert parse_sampler("Euler").schedule == "Uniform"


def test_split_reports_embedded_schedule() -> None:
    assert split_sampler("DPM++ 2M Karras") == ("DPM++ 2M", "Karras")
    assert split_sampler("DPM++ 2M") == ("DPM++ 2M", None)


def test_unknown_sampler_lists_known_ones() -> None:
    with pytest.raises(UnknownSamplerError) as info:
        parse_sampler("Warp drive")
    assert "Euler a" in str(info.value) and "DPM++ 2M" in str(info.value)


def test_unknown_and_unsupported_schedules() -> None:
    with pytest.raises(UnknownSamplerError, match="Known schedules"):
        parse_sampler("Euler", "Wobbly")
    with pytest.raises(UnknownSamplerError, match="does not support schedule 'Karras'"):
        parse_sampler("Euler a", "Karras")
    with pytest.raises(UnknownSamplerError, match="give one"):
        parse_sampler("DPM++ 2M Karras", "Exponential")


def test_recipes() -> None:
    recipe = scheduler_recipe(parse_sampler("DPM++ 2M SDE Karras"))
    assert recipe.class_name == "DPMSolverMultistepScheduler"
    assert dict(recipe.kwargs) == {
        "algorithm_type": "sde-dpmsolver++",
        "solver_order": 2,
        "use_karras_sigmas": True,
    }
    assert dict(scheduler_recipe(parse_sampler("DDIM", "SGM Uniform")).kwargs) == {
        "timestep_spacing": "trailing"
    }
    assert scheduler_recipe(parse_sampler("TCD")).class_name == "TCDScheduler"
