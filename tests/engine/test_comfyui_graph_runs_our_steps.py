"""The graph's KSampler runs the noise levels our engine runs, and its ControlNet units act at the same calls.

Our side is the engine's own diffusers scheduler (``make_scheduler`` over the SD 1.x config) cut as
diffusers' img2img ``get_timesteps`` cuts it, and diffusers' ControlNet rule (``controlnet_keep``: call
``i`` of ``n`` uses a unit when ``i / n >= start`` and ``(i + 1) / n <= end``). ComfyUI's side is its code
reproduced with torch in :mod:`.test_comfyui_schedule_sigmas` (``KSampler.set_steps``, the schedulers, the
model calls, ``percent_to_sigma``; ``comfy/controlnet.py`` skips a unit when the call's sigma is above
``percent_to_sigma(start_percent)`` or below ``percent_to_sigma(end_percent)``).
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch

from ml_lib.diffusion.engine.schedulers import make_scheduler
from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.plan import ControlUse, InitImage
from ml_lib.diffusion.samplers import SamplerChoice

from ..unit.test_comfyui_graph import REF, by_type, check_against_schema, make_plan
from .test_comfyui_schedule_sigmas import ComfyDiscrete, ksampler_sigmas, model_calls

SD1_SCHEDULER = json.loads(
    resources.files("ml_lib.diffusion.assets")
    .joinpath("configs/sd1/scheduler/scheduler_config.json")
    .read_text()
)


def engine_timesteps(sampler: str, schedule: str, steps: int, strength: float = 1.0) -> tuple[object, int]:
    """Our engine's scheduler after diffusers' img2img cut (with the strength the engine hands it), and the
    index it starts at."""
    scheduler = make_scheduler(SamplerChoice(sampler, schedule), SD1_SCHEDULER, "epsilon")
    scheduler.set_timesteps(steps)
    handed = strength if strength >= 1.0 else InitImage(REF, strength=strength).pipeline_strength(steps)
    run = min(int(steps * handed), steps)  # diffusers' get_timesteps
    return scheduler, (steps - run) * scheduler.order


def comfy_run(graph_nodes: dict[str, dict[str, object]]) -> tuple[ComfyDiscrete, torch.Tensor, dict]:
    (node,) = by_type(graph_nodes, "KSampler")
    inputs = node["inputs"]
    s = ComfyDiscrete()
    sigmas = ksampler_sigmas(
        s, inputs["sampler_name"], inputs["scheduler"], inputs["steps"], inputs["denoise"]
    )
    return s, sigmas, inputs


@pytest.mark.parametrize(
    ("steps", "strength"), [(6, 1.0), (30, 1.0), (20, 1.0), (50, 1.0), (30, 0.5), (7, 0.8)]
)
def test_ddim_graph_runs_our_ddim_timesteps(steps: int, strength: float) -> None:
    init = None if strength == 1.0 else InitImage(REF, strength=strength)
    graph = comfy_graph(make_plan(sampler="DDIM", schedule="Uniform", steps=steps, init=init), seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    s, sigmas, inputs = comfy_run(graph.nodes)
    scheduler, start = engine_timesteps("DDIM", "Uniform", steps, strength)
    ours = [int(t) for t in scheduler.timesteps[start:]]
    theirs = [int(s.timestep(sigma)) for sigma in sigmas[:-1]]
    assert theirs == ours
    if strength == 1.0 and steps in (6, 30):  # the graph before: ddim_uniform's own count (7, 31)
        assert len(ksampler_sigmas(s, "ddim", "ddim_uniform", steps, 1.0)) - 1 == steps + 1
        assert inputs["denoise"] < 1.0


IMG2IMG = [
    ("Euler", "Uniform", 20, 0.5),
    ("Euler a", "Uniform", 30, 0.75),
    ("DPM++ 2M", "Karras", 25, 0.55),
    ("LMS", "Uniform", 20, 0.3),
    ("Heun", "Karras", 20, 0.6),
    ("DPM2", "Karras", 20, 0.6),  # both drop the penultimate sigma (A1111's discard_next_to_last_sigma)
    ("DPM2 a", "Uniform", 25, 0.55),
]


@pytest.mark.parametrize(("sampler", "schedule", "steps", "strength"), IMG2IMG)
def test_img2img_graph_runs_our_sigmas(sampler: str, schedule: str, steps: int, strength: float) -> None:
    plan = make_plan(sampler=sampler, schedule=schedule, steps=steps, init=InitImage(REF, strength=strength))
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None
    _s, sigmas, inputs = comfy_run(graph.nodes)
    scheduler, start = engine_timesteps(sampler, schedule, steps, strength)
    ours = torch.unique_consecutive(scheduler.sigmas[start:].float())  # Heun repeats each inner sigma
    assert inputs["steps"] == int(steps * strength) + 1 == len(sigmas) - 1  # A1111's count
    # diffusers interpolates sigma linearly between training steps, ComfyUI its log: within 1e-3
    torch.testing.assert_close(sigmas.float(), ours, rtol=1e-3, atol=1e-5)
    old = ksampler_sigmas(ComfyDiscrete(), inputs["sampler_name"], inputs["scheduler"], steps, strength)
    assert len(old) != len(ours)  # steps with denoise = strength ran all the steps of another schedule


@pytest.mark.parametrize(
    ("sampler", "schedule", "strength", "start", "end", "differed"),
    [
        ("Euler", "Uniform", 1.0, 0.2, 0.6, False),  # normal's sigmas are linear in the percent: no change
        ("DPM++ 2M", "Karras", 0.55, 0.0, 0.5, True),
        ("DPM++ SDE", "Karras", 1.0, 0.25, 0.8, True),
        ("Euler a", "Uniform", 0.7, 0.33, 1.0, True),
    ],
)
def test_controlnet_acts_at_our_engines_calls(
    sampler: str, schedule: str, strength: float, start: float, end: float, differed: bool
) -> None:
    steps = 20
    init = None if strength == 1.0 else InitImage(REF, strength=strength)
    unit = ControlUse("/cn/canny.safetensors", REF, scale=0.8, guidance_start=start, guidance_end=end)
    plan = make_plan(sampler=sampler, schedule=schedule, steps=steps, init=init, controls=(unit,))
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    s, sigmas, inputs = comfy_run(graph.nodes)
    (apply,) = by_type(graph.nodes, "ControlNetApplyAdvanced")
    high = s.percent_to_sigma(apply["inputs"]["start_percent"])
    low = s.percent_to_sigma(apply["inputs"]["end_percent"])
    calls = model_calls(sigmas, inputs["sampler_name"])
    theirs = [not (float(c) > high or float(c) < low) for c in calls]  # get_control's skip, in float32
    scheduler, first = engine_timesteps(sampler, schedule, steps, strength)
    n = len(scheduler.timesteps[first:])
    ours = [not (i / n < start or (i + 1) / n > end) for i in range(n)]
    assert theirs == ours
    high, low = s.percent_to_sigma(start), s.percent_to_sigma(end)  # the graph before: A1111's fractions
    assert ([not (float(c) > high or float(c) < low) for c in calls] != ours) is differed
