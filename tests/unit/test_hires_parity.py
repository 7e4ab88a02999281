"""Planning the hires fix's prompt schedule (A1111's ``calculate_hr_conds``): in the plan, in its JSON only
when used, and derived (validation refuses an edited one)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ml_lib.diffusion.errors import PlanError
from ml_lib.diffusion.plan import GenerationPlan, ModelFormat, ModelRef, ResolvedRequest
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.planning.prompt_schedule import plan_prompt_schedule
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings

CPU = DeviceInfo("cpu", "test CPU")
LIMITS = Limits(max_side=4096)


@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    return Planner(Settings(home=tmp_path, limits=LIMITS), seed_source=lambda: 1234)


def plan(planner: Planner, prompt: str, **kw: object) -> GenerationPlan:
    request = GenerationRequest(prompt, **kw)  # type: ignore[arg-type]
    model = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "x")
    return planner.plan(request, ResolvedRequest(model), None, CPU)


def test_the_hires_pass_gets_a1111s_schedule_over_its_steps(planner: Planner) -> None:
    p = plan(
        planner, "a [cat:dog:25] [red|blue]", negative_prompt="[ugly:1.5]", steps=20, sampler="Euler",
        width=512, height=512, hires_steps=10, hires_sampler="Heun",
    )  # fmt: skip
    assert p.hires is not None and p.hires.prompt_schedule is not None
    expected = plan_prompt_schedule(
        "a [cat:dog:25] [red|blue]", "[ugly:1.5]", 20, "Euler", hires_steps=10, hires_sampler="Heun"
    )
    assert p.hires.prompt_schedule == expected
    assert expected is not None and expected.calls == 20  # Heun: two calls per hires step
    assert p.hires.prompt_schedule != p.prompt_schedule
    assert GenerationPlan.from_json(p.to_json()) == p
    validate_plan(p, LIMITS)


def test_the_hires_prompt_is_scheduled_even_when_the_first_is_not(planner: Planner) -> None:
    p = plan(planner, "a cat", width=512, height=512, hires_prompt="a [fox:owl:0.5]")
    assert p.prompt_schedule is None and p.hires is not None
    assert p.hires.prompt_schedule == plan_prompt_schedule(
        "a [fox:owl:0.5]", "", p.steps, p.sampler, hires_steps=p.steps
    )


def test_plain_prompts_leave_the_hires_json_as_before(planner: Planner) -> None:
    p = plan(planner, "a cat", width=512, height=512, hires_scale=2.0)
    assert p.hires is not None and p.hires.prompt_schedule is None
    assert "prompt_schedule" not in json.loads(p.to_json())["hires"]


def test_an_edited_hires_schedule_is_refused(planner: Planner) -> None:
    p = plan(planner, "a [cat:dog:25]", steps=20, width=512, height=512, hires_steps=10)
    assert p.hires is not None and p.hires.prompt_schedule is not None and p.prompt_schedule is not None
    edited = dataclasses.replace(p, hires=dataclasses.replace(p.hires, prompt_schedule=p.prompt_schedule))
    with pytest.raises(PlanError, match=r"hires\.prompt_schedule"):
        validate_plan(edited, LIMITS)
    bad_sampler = dataclasses.replace(p, hires=dataclasses.replace(p.hires, sampler="Magic"))
    with pytest.raises(PlanError, match="hires"):
        validate_plan(bad_sampler, LIMITS)
    # a plan from before hires schedules (none recorded) still validates and runs as it did
    validate_plan(dataclasses.replace(p, hires=dataclasses.replace(p.hires, prompt_schedule=None)), LIMITS)
