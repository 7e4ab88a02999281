"""The plan's prompt schedule against AUTOMATIC1111's ``modules/prompt_parser.py``.

Expected values come from A1111's own examples: the comment at the top of ``prompt_parser.py`` (the
"fantasy landscape" schedule at 100 steps), the docstrings of ``get_learned_conditioning`` ("a
[blue:green:5] jeweled crown", 20 steps) and ``get_learned_conditioning_prompt_schedules`` (hires
pass examples); the grammar's own doctests are in ``test_prompt_syntax.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.errors import ConfigError, PlanError
from ml_lib.diffusion.output.infotext import format_infotext
from ml_lib.diffusion.plan import GenerationPlan, ModelFormat, ModelRef, ResolvedRequest
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.planning.prompt_schedule import (
    denoiser_calls,
    plan_prompt_schedule,
    plan_sdxl_empty_negative,
)
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.prompt_schedule import PromptSchedule, ScheduledText
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings


def schedule(prompt: str, negative: str = "", steps: int = 10, sampler: str = "Euler") -> PromptSchedule:
    planned = plan_prompt_schedule(prompt, negative, steps, sampler)
    assert planned is not None
    return planned


def entries(part: ScheduledText) -> list[tuple[int, str]]:
    return [(end, part.text_at(end)) for end in part.until]


def test_a1111_module_example_at_100_steps() -> None:
    prompt = (
        "fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
        "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]"
    )
    (part,) = schedule(prompt, steps=100).parts
    assert entries(part) == [
        (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
        (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
        (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
        (75, "fantasy landscape with a lake and an oak in background masterful"),
        (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
    ]


def test_get_learned_conditioning_example_and_call_counting() -> None:
    (part,) = schedule("a [blue:green:5] jeweled crown", steps=20).parts
    assert part.until == (5, 20) and part.texts == ("a blue jeweled crown", "a green jeweled crown")
    # reconstruct_cond_batch picks the first entry with call <= end_at_step, the call counted from 0:
    # calls 0..5 (six of them) use the first text.
    assert [part.segment(call) for call in range(20)] == [0] * 6 + [1] * 14
    assert part.text_at(25) == "a green jeweled crown"  # past the end: the last text


def test_alternation_stores_each_text_once_and_switches_every_call() -> None:
    (part,) = schedule("a [cat|dog]", steps=6).parts
    assert part.texts == ("a cat", "a dog") and part.until == (1, 2, 3, 4, 5, 6)
    assert part.index == (0, 1, 0, 1, 0, 1)
    # A1111's counter starts at 0 and entry 1 lasts to call 1: cat, cat, then one switch per call.
    assert [part.text_at(c) for c in range(6)] == ["a cat", "a cat", "a dog", "a cat", "a dog", "a cat"]


def test_and_parts_carry_their_weights_and_texts_as_a1111_splits_them() -> None:
    planned = schedule("a cat :0.7 AND a dog AND [red|blue] hat:-0.5")
    assert [(p.texts[0], p.weight) for p in planned.parts] == [
        ("a cat", 0.7),
        (" a dog", 1.0),  # re_weight keeps leading spaces, drops trailing ones
        (" red hat", -0.5),
    ]
    assert planned.composed
    assert planned.negative.texts == ("",)


def test_a_written_weight_is_removed_from_the_text_even_when_it_is_1() -> None:
    (part,) = schedule("a cat:1").parts
    assert part.texts == ("a cat",) and part.weight == 1.0
    assert not schedule("a cat:1").composed


def test_negative_prompt_is_scheduled_but_never_split_on_and() -> None:
    planned = schedule("[a:b:2]", "ugly AND bad :0.5")
    assert planned.negative.texts == ("ugly AND bad :0.5",)
    planned = schedule("a cat", "[blurry:ugly:3]")
    assert planned.negative.until == (3, 10) and planned.negative.texts == ("blurry", "ugly")
    assert planned.parts[0].texts == ("a cat",) and not planned.composed


@pytest.mark.parametrize(
    "prompt",
    ["a cat", "(a red:1.2) [blurry] circle", "a [unbalanced", "<lora:x:0.5> a cat", "a (cat:1.3), 8k"],
)
def test_prompts_conditioned_as_written_have_no_schedule(prompt: str) -> None:
    assert plan_prompt_schedule(prompt, "blurry, (ugly:1.2)", 20, "Euler") is None


def test_second_order_samplers_count_two_calls_per_step() -> None:
    assert denoiser_calls(10, "Euler") == 10 and denoiser_calls(10, "DPM++ 2M Karras") == 10
    for sampler in ("Heun", "DPM2", "DPM2 a Karras", "DPM++ SDE"):
        assert denoiser_calls(10, sampler) == 20
    assert schedule("[a:b:0.5]", sampler="Heun").parts[0].until == (10, 20)
    assert schedule("[a:b:0.5]", sampler="Euler").parts[0].until == (5, 10)


def test_hires_pass_counts_on_from_the_first_pass() -> None:
    # get_learned_conditioning_prompt_schedules docstring, with hires_steps=10
    second = plan_prompt_schedule("a [b:1.5] c", "", 10, "Euler", hires_steps=10)
    assert second is not None and second.calls == 10
    assert entries(second.parts[0]) == [(5, "a  c"), (10, "a b c")]
    second = plan_prompt_schedule("a [b:.5] c", "", 10, "Euler", hires_steps=10)
    assert second is not None and entries(second.parts[0]) == [(10, "a b c")]


CPU = DeviceInfo("cpu", "test CPU")


def _plan(tmp_path: Path, prompt: str, family: str = "sd1", **settings: object) -> GenerationPlan:
    planner = Planner(
        Settings(home=tmp_path, limits=Limits(max_side=2048), **settings), seed_source=lambda: 5
    )  # type: ignore[arg-type]
    model = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, family, "epsilon", "x")
    request = GenerationRequest(prompt, steps=8, sampler="Euler", negative_prompt="blurry")
    return planner.plan(request, ResolvedRequest(model), None, CPU)


def test_plan_carries_the_schedule_and_round_trips(tmp_path: Path) -> None:
    plain = _plan(tmp_path, "a red circle")
    assert plain.prompt_schedule is None and "prompt_schedule" not in plain.to_dict()
    plan = _plan(tmp_path, "a [red|blue] circle AND a hat :0.5")
    assert plan.prompt == "a [red|blue] circle AND a hat :0.5"
    infotext = format_infotext(plan, seed=plan.seed, model_hash=None, version="test")
    assert infotext.startswith("a [red|blue] circle AND a hat :0.5\nNegative prompt: blurry\n")
    assert plan.prompt_schedule == plan_prompt_schedule(plan.prompt, "blurry", 8, "Euler")
    again = GenerationPlan.from_json(plan.to_json())
    assert again == plan
    validate_plan(again, Limits())


def test_validation_refuses_a_schedule_that_is_not_the_prompts(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "a [cat:dog:4]")
    data = plan.to_dict()
    data["prompt_schedule"]["parts"][0]["texts"] = ["a cat", "something else"]
    with pytest.raises(PlanError, match="prompt_schedule"):
        validate_plan(GenerationPlan.from_dict(data), Limits())
    data = plan.to_dict()
    data["sdxl_empty_negative"] = "maybe"
    with pytest.raises(PlanError, match="sdxl_empty_negative"):
        validate_plan(GenerationPlan.from_dict(data), Limits())


def test_sdxl_empty_negative_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(home=tmp_path).sdxl_empty_negative == "zeros"
    monkeypatch.setenv("ML_DIFFUSION_SDXL_EMPTY_NEGATIVE", "Encode")
    assert Settings.from_env().sdxl_empty_negative == "encode"
    monkeypatch.setenv("ML_DIFFUSION_SDXL_EMPTY_NEGATIVE", "ones")
    with pytest.raises(ConfigError, match="zeros, encode"):
        Settings.from_env()
    assert plan_sdxl_empty_negative(Family.SD1, "encode") == ("zeros", None)
    value, decision = plan_sdxl_empty_negative(Family.SDXL, "encode")
    assert value == "encode" and decision is not None and "ComfyUI" in decision.reason
    xl = _plan(tmp_path, "a fox", "sdxl", sdxl_empty_negative="encode")
    assert xl.sdxl_empty_negative == "encode" and xl.decision("sdxl_empty_negative") is not None
    assert "sdxl_empty_negative" not in _plan(tmp_path, "a fox", "sdxl").to_dict()
