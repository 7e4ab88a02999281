"""The hires fix's second pass honours prompt editing, alternation and ``AND`` as A1111's
``calculate_hr_conds`` does: the schedule recomputed over the hires steps, edits counting on from the
first pass (a fraction ``when`` past 1 or a step past the first pass's steps switch inside the second pass).

What the UNet sees at each call of both passes is captured inside it (``capture`` of
``test_prompt_schedule``) and compared with diffusers' own ``encode_prompt`` of the text A1111's rules
name for that call, written out by hand below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch

from ml_lib.diffusion.engine.executor import execute
from ml_lib.diffusion.engine.pool import LoadedPipeline
from ml_lib.diffusion.plan import GenerationPlan, HiresPlan
from ml_lib.diffusion.planning.prompt_schedule import plan_hires_schedule
from ml_lib.diffusion.testing.tiny import tiny_sd1_components, tiny_sdxl_components

from .test_prompt_schedule import by_hand, capture, make_plan


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pipes() -> dict[str, LoadedPipeline]:
    out = {}
    for family, build in (("sd1", tiny_sd1_components), ("sdxl", tiny_sdxl_components)):
        pipe = build()
        pipe.set_progress_bar_config(disable=True)
        out[family] = LoadedPipeline(pipe, (family, None, "float32", "cpu", "none"))
    return out


def hires_plan(prompt: str, *, family: str = "sd1", hires_prompt: str = "") -> GenerationPlan:
    """A 4-step Euler plan at 32x32 with a latent hires pass of 4 steps."""
    plan = make_plan(prompt, family=family, steps=4)
    second = HiresPlan(upscaler="Latent", scale=1.5, steps=4, denoise=0.5, prompt=hires_prompt)
    schedule = plan_hires_schedule(second, plan.prompt, plan.negative_prompt, plan.steps, plan.sampler)
    return dataclasses.replace(plan, hires=dataclasses.replace(second, prompt_schedule=schedule))


def assert_calls(loaded: LoadedPipeline, seen: dict[str, list[torch.Tensor]], texts: list[str]) -> None:
    assert len(seen["hidden"]) == len(texts)
    for call, text in enumerate(texts):
        hidden, pooled = by_hand(loaded.pipe, text, "blurry")
        assert torch.equal(seen["hidden"][call], hidden), (call, text)
        if pooled is not None:
            assert torch.equal(seen["pooled"][call], pooled), (call, text)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_an_edit_past_the_first_pass_switches_inside_the_hires_pass(
    pipes: dict[str, LoadedPipeline], family: str
) -> None:
    loaded = pipes[family]
    encoders = [e for e in (loaded.pipe.text_encoder, getattr(loaded.pipe, "text_encoder_2", None)) if e]
    runs: list[int] = []
    hooks = [e.register_forward_hook(lambda *_: runs.append(1)) for e in encoders]
    try:
        with capture(loaded.pipe.unet) as seen:
            execute(loaded, hires_plan("a [cat:dog:6] hat", family=family))
    finally:
        for hook in hooks:
            hook.remove()
    # First pass: when = min(4, 6) → "cat" at every call. Hires pass: 6 - 4 first-pass steps = 2, so
    # calls 0..2 "cat", call 3 "dog" (A1111's int_offset for hires_steps).
    assert_calls(loaded, seen, ["a cat hat"] * 4 + ["a cat hat"] * 3 + ["a dog hat"])
    # "a cat hat", "blurry" (first pass), "a dog hat" (hires): each once over both passes
    assert len(runs) == 3 * len(encoders)


def test_fractions_and_alternation_restart_over_the_hires_steps(pipes: dict[str, LoadedPipeline]) -> None:
    loaded = pipes["sd1"]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, hires_plan("a [cat:dog:0.5] [red|blue] hat"))
    first = ["a cat red hat", "a cat red hat", "a cat blue hat", "a dog red hat"]
    # In the hires pass a fraction below 1 has passed ((0.5 - 1) x steps < 0: "dog" throughout) and the
    # alternation counts the hires calls from 0 again.
    second = ["a dog red hat", "a dog red hat", "a dog blue hat", "a dog red hat"]
    assert_calls(loaded, seen, first + second)


def test_a_scheduled_hires_prompt_after_a_plain_first_pass(pipes: dict[str, LoadedPipeline]) -> None:
    loaded = pipes["sd1"]
    plan = hires_plan("a cat", hires_prompt="a [fox:owl:1.5]")
    assert plan.prompt_schedule is None and plan.hires is not None and plan.hires.prompt_schedule
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, plan)
    # (1.5 - 1) x 4 hires steps = 2: hires calls 0..2 "fox", call 3 "owl"
    assert_calls(loaded, seen, ["a cat"] * 4 + ["a fox"] * 3 + ["a owl"])
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, hires_plan("a cat", hires_prompt="a [fox:owl:5]"))
    assert_calls(loaded, seen, ["a cat"] * 4 + ["a fox"] * 2 + ["a owl"] * 2)  # 5 - 4 = 1: calls 0, 1


def test_and_parts_are_combined_in_the_hires_pass(pipes: dict[str, LoadedPipeline]) -> None:
    loaded = pipes["sd1"]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, hires_plan("a cat AND a [red:blue:6] hat :0.5"))
    assert len(seen["hidden"]) == 8
    for call in range(8):
        hat = "a blue hat" if call == 7 else "a red hat"  # 6 - 4 = 2: hires calls 0..2 red, 3 blue
        cat_hidden = by_hand(loaded.pipe, "a cat", "blurry")[0]
        hat_hidden = by_hand(loaded.pipe, hat, "blurry")[0]
        assert torch.equal(seen["hidden"][call], torch.cat([cat_hidden, hat_hidden[1:]])), call
        raw, returned = seen["raw"][call], seen["returned"][call]
        assert raw.shape[0] == 3 and returned.shape[0] == 2
        uncond = raw[:1]
        torch.testing.assert_close(
            returned[1:], uncond + 1.0 * (raw[1:2] - uncond) + 0.5 * (raw[2:3] - uncond)
        )


def test_a_hires_pass_without_its_schedule_keeps_the_old_conditioning(
    pipes: dict[str, LoadedPipeline],
) -> None:
    """A plan made before hires schedules (no ``hires.prompt_schedule``) reproduces as it ran: the second
    pass conditions on the first pass's call-0 embeddings."""
    loaded = pipes["sd1"]
    plan = hires_plan("a [cat:dog:6] hat")
    assert plan.hires is not None
    old = dataclasses.replace(plan, hires=dataclasses.replace(plan.hires, prompt_schedule=None))
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, old)
    assert_calls(loaded, seen, ["a cat hat"] * 8)
