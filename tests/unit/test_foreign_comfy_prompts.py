"""Our ComfyUI graphs' prompt shapes (BREAK, prompt editing, AND, the zeroed SDXL negative) read back by the
foreign ComfyUI reader into the same A1111 prompt."""

from __future__ import annotations

import dataclasses

import pytest

from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.output.comfyui_workflow import api_to_workflow
from ml_lib.diffusion.output.foreign.comfy import read_comfy_prompt, read_comfy_workflow
from ml_lib.diffusion.plan import ControlUse, InitImage, ModelFormat, ModelRef
from ml_lib.diffusion.planning.prompt_schedule import plan_prompt_schedule
from ml_lib.diffusion.prompt.syntax import parse_prompt

from .test_comfyui_graph import REF, by_type, make_plan


def round_trip(prompt: str, negative: str = "lowres", **overrides: object) -> tuple[object, ...]:
    steps = int(overrides.pop("steps", 20))  # type: ignore[call-overload]
    sampler = str(overrides.pop("sampler", "Euler"))
    plan = make_plan(
        prompt=prompt,
        negative_prompt=negative,
        steps=steps,
        sampler=sampler,
        schedule=str(overrides.pop("schedule", "Karras")),
        loras=(),
        embeddings=(),
        prompt_schedule=plan_prompt_schedule(prompt, negative, steps, sampler),
        **overrides,
    )
    graph = comfy_graph(plan, seed=5)
    assert graph.reason is None
    metas = [read_comfy_prompt(graph.nodes), read_comfy_workflow(api_to_workflow(graph.nodes))]
    assert metas[0] == dataclasses.replace(metas[1], source="prompt")
    return metas[0], graph.nodes, plan


@pytest.mark.parametrize(
    ("prompt", "negative", "sampler"),
    [
        ("a red fox BREAK a blue sky", "lowres", "Euler"),
        ("a (red:1.2) fox BREAK a blue sky BREAK snow", "lowres BREAK blurry", "Euler"),
        ("a [fox:wolf:7] on a mat", "lowres", "Euler"),
        ("a [fox:wolf:7] on a mat", "[ugly:blurry:3], lowres", "DPM++ 2M"),
        ("a [fox:wolf:12] on a mat", "lowres", "Heun"),  # a call counter of two calls per step
        ("a cat [wearing a hat::9]", "lowres", "Euler a"),
        ("a cat [wearing a hat:12]", "lowres", "DPM++ SDE"),
        ("a fox AND a wolf :1.2", "lowres", "Euler"),
        ("a fox :0.5 AND a [wolf:bear:10] :1.5", "lowres", "DPM++ 2M"),
    ],
)
def test_prompt_reads_back_as_written(prompt: str, negative: str, sampler: str) -> None:
    meta, _, plan = round_trip(prompt, negative, sampler=sampler)
    assert (meta.prompt, meta.negative_prompt) == (prompt, negative)
    assert meta.cfg_scale == plan.cfg_scale  # the AND graph's CFG x the weights' sum, divided back
    assert not [u for u in meta.unmapped if "prompt" in u.key or "Conditioning" in u.key], meta.unmapped


def test_a_fraction_reads_back_as_the_step_it_switches_at() -> None:
    meta, _, plan = round_trip("a [fox:wolf:0.5] on a mat")
    assert meta.prompt == "a [fox:wolf:10] on a mat"
    same = plan_prompt_schedule(meta.prompt, "lowres", 20, "Euler")
    assert same == plan.prompt_schedule


def test_alternation_is_not_read_back_and_says_why() -> None:
    meta, _, _ = round_trip("a [fox|wolf] on a mat", steps=6)
    (entry,) = [u for u in meta.unmapped if u.key == "positive prompt"]
    assert "step ranges of one prompt" in entry.reason
    assert meta.prompt == "a fox on a mat"  # the first text, as before


def test_zeroed_sdxl_negative_reads_back_empty_and_controlnet_negative_is_the_negative() -> None:
    sdxl = ModelRef("/models/xl.safetensors", ModelFormat.SINGLE_FILE, "sdxl", name="xl")
    meta, nodes, _ = round_trip("a fox", "", model=sdxl)
    assert by_type(nodes, "ConditioningZeroOut") and (meta.prompt, meta.negative_prompt) == ("a fox", "")
    meta, _, _ = round_trip("a fox", "blurry", controls=(ControlUse("/cn/c.safetensors", REF, name="c"),))
    assert (meta.prompt, meta.negative_prompt) == ("a fox", "blurry")


def test_read_back_prompts_parse_as_the_same_schedule() -> None:
    prompt = "a [fox:wolf:7] BREAK on a mat"
    meta, _, plan = round_trip(prompt)
    assert parse_prompt(meta.prompt).uses_break
    assert plan_prompt_schedule(meta.prompt, meta.negative_prompt, 20, "Euler") == plan.prompt_schedule


def test_ddim_graph_denoise_is_a_txt2img_of_its_steps_and_img2img_still_says_so() -> None:
    meta, nodes, _ = round_trip("a [fox:wolf:7] on a mat", sampler="DDIM", schedule="Uniform", steps=30)
    (sampler,) = by_type(nodes, "KSampler")
    assert sampler["inputs"]["denoise"] == 0.99
    assert (meta.prompt, meta.steps, meta.sampler) == ("a [fox:wolf:7] on a mat", 30, "DDIM")
    assert not [u for u in meta.unmapped if u.key == "denoise"]
    img2img = comfy_graph(make_plan(init=InitImage(REF, strength=0.5)), seed=1).nodes
    (entry,) = [u for u in read_comfy_prompt(img2img).unmapped if u.key == "denoise"]
    assert "source image" in entry.reason


def test_a_shared_input_tree_is_refused_not_expanded() -> None:
    graph: dict[str, dict[str, object]] = {
        "1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["9", 1]}},
    }
    for i in range(2, 60):  # each Combine takes the previous node twice: 2^58 conds if expanded
        graph[str(i)] = {
            "class_type": "ConditioningCombine",
            "inputs": {"conditioning_1": [str(i - 1), 0], "conditioning_2": [str(i - 1), 0]},
        }
    graph["60"] = {
        "class_type": "KSampler",
        "inputs": {"positive": ["59", 0], "negative": ["1", 0], "steps": 20, "sampler_name": "euler"},
    }
    meta = read_comfy_prompt(graph)
    (entry,) = [u for u in meta.unmapped if u.key == "positive prompt"]
    assert "more than 2000 nodes" in entry.reason and meta.prompt == "a fox"
