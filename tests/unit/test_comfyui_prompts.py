"""BREAK, AND and prompt schedules in our ComfyUI graphs (output/comfyui_prompts.py), and the refusals.

The ranges' switching step is checked against ComfyUI's own rules in tests/engine/test_comfyui_schedule_sigmas.py;
here: the nodes, the schema, the AND arithmetic and every reason a graph is not written.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from ml_lib.diffusion.output.comfyui import comfy_chunks, comfy_graph
from ml_lib.diffusion.output.comfyui_prompts import MAX_RANGES, comfy_pieces
from ml_lib.diffusion.output.comfyui_workflow import api_to_workflow, workflow_to_api
from ml_lib.diffusion.plan import (
    ControlUse,
    GenerationPlan,
    HiresPlan,
    InitImage,
    ModelFormat,
    ModelRef,
    RefinerPlan,
)
from ml_lib.diffusion.planning.prompt_schedule import plan_hires_schedule, plan_prompt_schedule

from .test_comfyui_graph import REF, by_type, check_against_schema, make_plan


def scheduled(prompt: str, negative: str = "", **overrides: Any) -> GenerationPlan:
    plan = make_plan(prompt=prompt, negative_prompt=negative, **overrides)
    schedule = plan_prompt_schedule(prompt, negative, plan.steps, plan.sampler)
    return dataclasses.replace(plan, prompt_schedule=schedule)


def node_of(graph: dict[str, Any], link: list[Any]) -> dict[str, Any]:
    return graph[link[0]]


def test_pieces_follow_a1111s_chunks() -> None:
    assert comfy_pieces("a (fox:1.2) BREAK snow <lora:x:1>") == ("a (fox:1.2)", "snow ")
    assert comfy_pieces("a fox BREAK") == ("a fox",)  # nothing after the last BREAK: no chunk
    assert comfy_pieces("BREAK a fox") == ("", "a fox")  # an empty chunk before it
    assert comfy_pieces("a BREAK BREAK b") == ("a", "", "b")
    assert comfy_pieces("(a BREAK b)") == ("(a:1.1)(BREAK:-1.1)(b:1.1)",)  # weighted: A1111 reads a word


def test_break_is_a_concat_of_one_encode_per_piece() -> None:
    plan = make_plan(prompt="a red fox BREAK snow, (trees:1.2)", negative_prompt="lowres BREAK easyneg")
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None and graph.notes == ()
    check_against_schema(graph.nodes)
    (sampler,) = by_type(graph.nodes, "KSampler")
    positive = node_of(graph.nodes, sampler["inputs"]["positive"])
    assert positive["class_type"] == "ConditioningConcat"
    assert node_of(graph.nodes, positive["inputs"]["conditioning_to"])["inputs"]["text"] == "a red fox"
    assert (
        node_of(graph.nodes, positive["inputs"]["conditioning_from"])["inputs"]["text"] == "snow, (trees:1.2)"
    )
    negative = node_of(graph.nodes, sampler["inputs"]["negative"])
    assert (
        node_of(graph.nodes, negative["inputs"]["conditioning_from"])["inputs"]["text"] == "embedding:easyneg"
    )
    assert sampler["inputs"]["cfg"] == plan.cfg_scale


def test_each_distinct_text_is_encoded_once() -> None:
    plan = scheduled("a [fox|wolf] in snow", steps=10)
    graph = comfy_graph(plan, seed=1)
    check_against_schema(graph.nodes)
    texts = [n["inputs"]["text"] for n in by_type(graph.nodes, "CLIPTextEncode")]
    assert sorted(texts) == sorted(["a fox in snow", "a wolf in snow", ""])
    ranges = by_type(graph.nodes, "ConditioningSetTimestepRange")
    assert len(ranges) == 9  # calls 0-1, then one per call (A1111's alternation)
    assert ranges[0]["inputs"]["start"] == 0.0 and ranges[-1]["inputs"]["end"] == 1.0
    ends = [r["inputs"]["end"] for r in ranges[:-1]]
    assert ends == [r["inputs"]["start"] for r in ranges[1:]] and ends == sorted(ends)
    assert all(0 < e < 1 for e in ends)


def strengths_of(graph: dict[str, Any], link: list[Any]) -> tuple[float, ...]:
    """The strength of each cond of a conditioning list (nodes.py: Combine appends lists,
    ConditioningSetAreaStrength sets it; get_area_and_mult's default is 1)."""
    node = node_of(graph, link)
    if node["class_type"] == "ConditioningCombine":
        return strengths_of(graph, node["inputs"]["conditioning_1"]) + strengths_of(
            graph, node["inputs"]["conditioning_2"]
        )
    if node["class_type"] == "ConditioningSetAreaStrength":
        return (node["inputs"]["strength"],) * len(strengths_of(graph, node["inputs"]["conditioning"]))
    assert node["class_type"] in ("CLIPTextEncode", "ConditioningConcat")
    return (1.0,)


def comfy_denoised(weights: tuple[float, ...], strengths: tuple[float, ...], cfg: float) -> list[float]:
    """ComfyUI's calc_cond_batch + cfg_function on fixed predictions (one number per part)."""
    rng = random.Random(4)
    preds = [[rng.uniform(-1, 1) for _ in range(6)] for _ in weights]
    uncond = [rng.uniform(-1, 1) for _ in range(6)]
    total = sum(strengths) + 1e-37
    positive = [sum(s * p[k] for s, p in zip(strengths, preds, strict=True)) / total for k in range(6)]
    return [uncond[k] + (positive[k] - uncond[k]) * cfg for k in range(6)]


def a1111_denoised(weights: tuple[float, ...], cfg: float) -> list[float]:
    """A1111's combine_denoised on the same predictions."""
    rng = random.Random(4)
    preds = [[rng.uniform(-1, 1) for _ in range(6)] for _ in weights]
    uncond = [rng.uniform(-1, 1) for _ in range(6)]
    return [
        uncond[k] + cfg * sum(w * (p[k] - uncond[k]) for w, p in zip(weights, preds, strict=True))
        for k in range(6)
    ]


@pytest.mark.parametrize(
    ("prompt", "weights"),
    [
        ("a fox AND a wolf :0.5", (1.0, 0.5)),
        ("a fox :0.4 AND a wolf :0.6", (0.4, 0.6)),
        ("a fox :1.5", (1.5,)),
        ("a fox :12 AND a wolf :3", (12.0, 3.0)),
        ("a fox :0 AND a wolf :2", (0.0, 2.0)),
    ],
)
def test_and_parts_give_a1111s_weighted_sum(prompt: str, weights: tuple[float, ...]) -> None:
    plan = scheduled(prompt, cfg_scale=6.5)
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (sampler,) = by_type(graph.nodes, "KSampler")
    strengths = strengths_of(graph.nodes, sampler["inputs"]["positive"])
    assert len(strengths) == len(weights) and max(strengths) <= 10
    cfg = sampler["inputs"]["cfg"]
    assert cfg == pytest.approx(6.5 * sum(weights))
    assert comfy_denoised(weights, strengths, cfg) == pytest.approx(a1111_denoised(weights, 6.5))
    assert bool([n for n in graph.notes if n.startswith("AND")]) == (sum(weights) != 1.0)


def test_and_parts_are_combined_for_the_positive_only() -> None:
    graph = comfy_graph(scheduled("a fox AND a wolf", "lowres"), seed=1).nodes
    (sampler,) = by_type(graph, "KSampler")
    positive = node_of(graph, sampler["inputs"]["positive"])
    assert positive["class_type"] == "ConditioningCombine"
    assert node_of(graph, sampler["inputs"]["negative"])["inputs"]["text"] == "lowres"


def test_img2img_schedule_is_written_with_step_ranges() -> None:
    """Its calls are checked against our engine's in ``tests/engine/test_img2img_schedules.py``."""
    # 25 steps at strength 0.5 run 12 calls, indexed 0-11 in the schedule of all 25 steps: [fox:wolf:0.3]
    # switches after call 7, within the run; [fox:wolf:0.5] after call 12, past it (fox throughout).
    switching = comfy_graph(scheduled("a [fox:wolf:0.3]", init=InitImage(REF, strength=0.5)), seed=1)
    assert switching.reason is None
    assert len(by_type(switching.nodes, "ConditioningSetTimestepRange")) == 2
    late = comfy_graph(scheduled("a [fox:wolf:0.5]", init=InitImage(REF, strength=0.5)), seed=1)
    assert late.reason is None and by_type(late.nodes, "ConditioningSetTimestepRange") == []
    assert by_type(late.nodes, "CLIPTextEncode")[0]["inputs"]["text"] == "a fox"


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        (scheduled("a fox AND a wolf :-0.5"), "negative AND weight"),
        (scheduled("a fox :0 AND a wolf :0"), "sum to 0"),
        (scheduled("a fox AND a wolf :20", cfg_scale=7.0), "beyond KSampler's 100"),
        (
            scheduled("a fox AND a wolf", controls=(ControlUse("/cn/c.safetensors", REF, name="c"),)),
            "ControlNet",
        ),
        (scheduled("a [fox:wolf:0.5]", sampler="UniPC", schedule="Karras"), "uni_pc"),
        (scheduled("a [fox|wolf]", steps=MAX_RANGES + 2), f"at most {MAX_RANGES}"),
        (
            scheduled("a [fox:wolf:0.5]", steps=1000, sampler="DDIM", schedule="Uniform"),
            "DDIM's 1000 leading",
        ),
        (make_plan(prompt="a [fox:wolf:0.5]"), "holds no prompt schedule"),
        (
            scheduled(
                "a [fox:wolf:0.5]",
                model=ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd3", name="x"),
            ),
            "sd3",
        ),
    ],
)
def test_what_comfyui_cannot_do_gives_the_reason(plan: GenerationPlan, reason: str) -> None:
    graph = comfy_graph(plan, seed=1)
    assert graph.nodes == {} and graph.reason is not None and reason in graph.reason, graph.reason
    assert comfy_chunks(plan, seed=1) == ()


def test_a_schedule_with_the_refiner_is_refused() -> None:
    refiner = RefinerPlan(
        ModelRef("/m/refiner.safetensors", ModelFormat.SINGLE_FILE, "sdxl-refiner", name="r")
    )
    base = ModelRef("/m/base.safetensors", ModelFormat.SINGLE_FILE, "sdxl", name="b")
    for prompt in ("a [fox:wolf:0.5]", "a fox BREAK snow"):
        plan = scheduled(prompt, model=base, refiner=refiner)
        graph = comfy_graph(plan, seed=1)
        assert graph.reason is not None and "refiner" in graph.reason
    assert comfy_graph(make_plan(model=base, refiner=refiner), seed=1).reason is None


def test_alternation_up_to_the_bound_is_written() -> None:
    graph = comfy_graph(
        scheduled("a [fox|wolf]", steps=MAX_RANGES + 1, sampler="Euler", schedule="Uniform"), seed=1
    )
    assert graph.reason is None
    check_against_schema(graph.nodes)
    assert len(by_type(graph.nodes, "ConditioningSetTimestepRange")) == MAX_RANGES


def test_an_edit_after_the_last_call_writes_no_range() -> None:
    graph = comfy_graph(scheduled("a [cat:dog:50]", steps=20), seed=1)  # switches after call 50 of 20
    assert graph.reason is None and graph.notes == ()
    assert not by_type(graph.nodes, "ConditioningSetTimestepRange")
    assert [n["inputs"]["text"] for n in by_type(graph.nodes, "CLIPTextEncode")] == ["a cat", ""]


def test_the_hires_pass_has_its_own_ranges_and_cfg() -> None:
    prompt = "a [fox:wolf:0.5] AND snow :0.5"
    hires = HiresPlan(scale=1.5, steps=8, denoise=0.5)
    hires = dataclasses.replace(hires, prompt_schedule=plan_hires_schedule(hires, prompt, "", 20, "DPM++ 2M"))
    plan = scheduled(prompt, steps=20, cfg_scale=6.0, hires=hires)
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    first, second = by_type(graph.nodes, "KSampler")
    assert first["inputs"]["cfg"] == second["inputs"]["cfg"] == pytest.approx(9.0)
    # A1111's calculate_hr_conds counts the edit on from the first pass: the hires pass is all "a wolf"
    assert len(by_type(graph.nodes, "ConditioningSetTimestepRange")) == 2  # the first pass's
    hires_positive = node_of(graph.nodes, second["inputs"]["positive"])
    assert hires_positive["class_type"] == "ConditioningCombine"
    wolf = node_of(graph.nodes, hires_positive["inputs"]["conditioning_1"])
    assert wolf["class_type"] == "CLIPTextEncode" and wolf["inputs"]["text"] == "a wolf"
    snow = node_of(graph.nodes, hires_positive["inputs"]["conditioning_2"])
    assert snow["class_type"] == "ConditioningSetAreaStrength" and snow["inputs"]["strength"] == 0.5
    assert len(by_type(graph.nodes, "CLIPTextEncode")) == 4  # a fox, a wolf, snow, "": each once
    assert any(n.startswith("AND") for n in graph.notes) and any(n.startswith("Prompt") for n in graph.notes)


def test_the_workflow_of_a_scheduled_graph_reads_back_as_the_same_graph() -> None:
    plan = scheduled("a [fox:wolf:0.5] BREAK snow AND trees :0.5", "[ugly:blurry:0.3]", steps=12)
    graph = comfy_graph(plan, seed=1)
    workflow = api_to_workflow(graph.nodes, graph.omitted + graph.notes)
    back = workflow_to_api(workflow)
    for node_id, node in graph.nodes.items():
        assert back[node_id] == {"class_type": node["class_type"], "inputs": node["inputs"]}, node_id
    assert {n["type"] for n in workflow["nodes"]} >= {
        "ConditioningConcat",
        "ConditioningCombine",
        "ConditioningSetAreaStrength",
        "ConditioningSetTimestepRange",
        "Note",
    }
