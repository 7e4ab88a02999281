"""The KSampler steps/denoise search, its refusals, and the SDXL empty negative in ComfyUI graphs."""

from __future__ import annotations

import math

import pytest

from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.output.comfyui_sigmas import discrete_sampling, ksampler_sigmas, timeline
from ml_lib.diffusion.output.comfyui_steps import KSamplerRun, control_percents, engine_sigmas, ksampler_run
from ml_lib.diffusion.plan import ControlUse, HiresPlan, InitImage, ModelFormat, ModelRef, RefinerPlan
from ml_lib.diffusion.planning.hires import hires_schedule
from ml_lib.diffusion.planning.prompt_schedule import plan_prompt_schedule

from .test_comfyui_graph import REF, by_type, check_against_schema, make_plan

SDXL = ModelRef("/models/xl.safetensors", ModelFormat.SINGLE_FILE, "sdxl", name="xl")


@pytest.mark.parametrize(("steps", "run"), [(6, KSamplerRun(6, 0.99)), (20, KSamplerRun(20, 1.0))])
def test_ddim_steps_are_diffusers_leading_timesteps(steps: int, run: KSamplerRun) -> None:
    assert ksampler_run("ddim", "ddim_uniform", steps, steps) == run
    ms = discrete_sampling()
    sigmas = ksampler_sigmas(ms, "ddim", "ddim_uniform", run.steps, run.denoise)
    stride = 1000 // steps
    assert [round(ms.timestep(math.log(s))) for s in sigmas[:-1]] == [
        j * stride + 1 for j in reversed(range(steps))
    ]


def test_img2img_runs_the_tail_of_our_schedule() -> None:
    run = ksampler_run("euler", "karras", 30, int(30 * 0.35))
    assert run == KSamplerRun(10, 0.33)  # int(10 / 0.33) = 30
    ms = discrete_sampling()
    assert ksampler_sigmas(ms, "euler", "karras", run.steps, run.denoise) == engine_sigmas(
        "euler", "karras", 30, 10
    )
    assert ksampler_sigmas(ms, "euler", "karras", 10, 0.35) != engine_sigmas("euler", "karras", 30, 10)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sampler": "DDIM", "schedule": "Uniform", "steps": 1000}, "DDIM's 1000 leading steps"),
        (
            {
                "model": SDXL,
                "init": InitImage(REF, strength=0.5),
                "refiner": RefinerPlan(ModelRef("/r.safetensors", ModelFormat.SINGLE_FILE, "sdxl-refiner")),
            },
            "refiner's KSamplerAdvanced",
        ),
        (
            {
                "model": SDXL,
                "sampler": "DDIM",
                "schedule": "Uniform",
                "steps": 30,
                "refiner": RefinerPlan(ModelRef("/r.safetensors", ModelFormat.SINGLE_FILE, "sdxl-refiner")),
            },
            "refiner's KSamplerAdvanced",
        ),
        (
            {"controls": (ControlUse("/cn/x.safetensors", REF, guidance_start=0.5, guidance_end=0.52),)},
            "used at none of the 25 sampler calls",
        ),
    ],
)
def test_refused_with_the_reason(overrides: dict[str, object], reason: str) -> None:
    graph = comfy_graph(make_plan(**overrides), seed=1)
    assert graph.nodes == {} and graph.reason is not None and reason in graph.reason, graph.reason


def test_hires_pass_of_ddim_runs_our_steps() -> None:
    hires = HiresPlan(scale=1.5, steps=12, denoise=0.4, upscaler="Latent")
    graph = comfy_graph(make_plan(sampler="DDIM", schedule="Uniform", steps=30, hires=hires), seed=1)
    assert graph.reason is None
    first, second = by_type(graph.nodes, "KSampler")
    assert (first["inputs"]["steps"], first["inputs"]["denoise"]) == (30, 0.99)
    assert (second["inputs"]["steps"], second["inputs"]["denoise"]) == (12, 0.4)  # 12 of int(12 / 0.4) = 30


@pytest.mark.parametrize(
    ("steps", "hires_steps", "denoise"), [(30, 12, 0.4), (20, 0, 0.7), (25, 10, 1.0), (7, 3, 0.33)]
)
def test_hires_run_follows_the_engines_hires_schedule(steps: int, hires_steps: int, denoise: float) -> None:
    hires = HiresPlan(steps=hires_steps, denoise=denoise)
    total, strength = hires_schedule(steps, hires)
    graph = comfy_graph(make_plan(sampler="Euler", schedule="Uniform", steps=steps, hires=hires), seed=1)
    second = by_type(graph.nodes, "KSampler")[1]["inputs"]
    assert second["steps"] == int(total * strength) == (hires_steps or steps)
    assert int(second["steps"] / second["denoise"]) == total or (
        second["denoise"] == 1.0 and total == second["steps"]
    )


def negative_node(plan_overrides: dict[str, object]) -> tuple[dict, dict]:
    graph = comfy_graph(make_plan(loras=(), embeddings=(), **plan_overrides), seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (sampler,) = by_type(graph.nodes, "KSampler")
    return graph.nodes, graph.nodes[sampler["inputs"]["negative"][0]]


def test_sdxl_empty_negative_is_zeroed_as_our_engine_zeroes_it() -> None:
    nodes, negative = negative_node({"model": SDXL, "negative_prompt": ""})
    assert negative["class_type"] == "ConditioningZeroOut"
    assert nodes[negative["inputs"]["conditioning"][0]]["inputs"]["text"] == ""
    _, encoded = negative_node({"model": SDXL, "negative_prompt": "", "sdxl_empty_negative": "encode"})
    assert encoded["class_type"] == "CLIPTextEncode" and encoded["inputs"]["text"] == ""
    _, sd1 = negative_node({"negative_prompt": ""})  # SD 1.x encodes "" (no zeros setting there)
    assert sd1["class_type"] == "CLIPTextEncode"
    _, text = negative_node({"model": SDXL, "negative_prompt": "lowres"})
    assert text["class_type"] == "CLIPTextEncode" and text["inputs"]["text"] == "lowres"


def test_sdxl_empty_negative_with_a_prompt_schedule_is_zeroed() -> None:
    prompt = "a [cat:dog:0.5]"
    schedule = plan_prompt_schedule(prompt, "", 25, "DPM++ 2M")
    _, negative = negative_node(
        {"model": SDXL, "prompt": prompt, "negative_prompt": "", "prompt_schedule": schedule}
    )
    assert negative["class_type"] == "ConditioningZeroOut"


def test_ddim_prompt_schedule_switches_at_a1111s_call_of_our_30_steps() -> None:
    prompt = "a [fox:wolf:0.5]"
    schedule = plan_prompt_schedule(prompt, "lowres", 30, "DDIM")
    plan = make_plan(prompt=prompt, steps=30, sampler="DDIM", schedule="Uniform", prompt_schedule=schedule)
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (sampler,) = by_type(graph.nodes, "KSampler")
    assert (sampler["inputs"]["steps"], sampler["inputs"]["denoise"]) == (30, 0.99)
    ranges = sorted(
        (n["inputs"]["start"], n["inputs"]["end"])
        for n in by_type(graph.nodes, "ConditioningSetTimestepRange")
    )
    (first_end, second_start) = ranges[0][1], ranges[1][0]
    assert first_end == second_start
    ms = discrete_sampling()
    calls = ksampler_sigmas(ms, "ddim", "ddim_uniform", 30, 0.99)
    switch = ms.percent_to_sigma(first_end)  # A1111: "fox" for calls 0-15 (<= int(0.5 x 30))
    assert calls[16] < switch < calls[15]


def test_hires_pass_switches_controlnet_at_its_own_calls() -> None:
    unit = ControlUse("/cn/canny.safetensors", REF, scale=0.8, guidance_start=0.2, guidance_end=0.6)
    hires = HiresPlan(scale=1.5, steps=10, denoise=0.5, upscaler="Latent")
    plan = make_plan(sampler="Euler a", schedule="Uniform", steps=20, hires=hires, controls=(unit,))
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    first, second = by_type(graph.nodes, "KSampler")
    percents = []
    for sampler in (first, second):
        apply = graph.nodes[sampler["inputs"]["positive"][0]]["inputs"]
        line = timeline("euler_ancestral", "normal", sampler["inputs"]["steps"], sampler["inputs"]["denoise"])
        assert (apply["start_percent"], apply["end_percent"]) == control_percents(0.2, 0.6, line)
        percents.append((apply["start_percent"], apply["end_percent"]))
    assert percents[0] != percents[1]  # the hires pass's calls sit lower: other percents
