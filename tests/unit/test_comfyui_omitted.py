"""What ComfyUI graphs leave out, and say so: A1111's variation seed and seed resize (no core node) are
omitted from the graph and noted in its workflow (ComfyUI's frontend ``Note``); prompt schedules and AND are
written (test_comfyui_prompts.py) with a note on how. The hires fix with ControlNet units keeps them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ml_lib.diffusion.output.comfyui import PROMPT_CHUNK, WORKFLOW_CHUNK, comfy_chunks, comfy_graph
from ml_lib.diffusion.output.comfyui_workflow import workflow_to_api
from ml_lib.diffusion.output.foreign.comfy import read_comfy_workflow
from ml_lib.diffusion.plan import ControlUse, GenerationPlan, HiresPlan, VariationPlan
from ml_lib.diffusion.planning.prompt_schedule import plan_prompt_schedule

from .test_comfyui_graph import REF, by_type, check_against_schema, make_plan


def with_hires(plan: GenerationPlan, **fields: str) -> GenerationPlan:
    assert plan.hires is not None
    return dataclasses.replace(plan, hires=dataclasses.replace(plan.hires, **fields))  # type: ignore[arg-type]


def test_a_variation_seed_is_left_out_and_noted_in_the_workflow() -> None:
    plan = make_plan(variation=VariationPlan(seed=9, strength=0.3, resize_width=448, resize_height=640))
    graph = comfy_graph(plan, seed=1234, subseed=10)
    check_against_schema(graph.nodes)
    (sampler,) = by_type(graph.nodes, "KSampler")
    assert sampler["inputs"]["seed"] == 1234  # the image's seed; ComfyUI has no variation input
    assert graph.omitted == (
        "Not in this graph: A1111's variation seed 10 at strength 0.3 and seed resize from 448x640. "
        "ComfyUI's core nodes have no node for it (they draw one noise per seed), so this graph samples "
        "seed 1234 alone.",
    )
    chunks = dict(comfy_chunks(plan, seed=1234, subseed=10))
    assert json.loads(chunks[PROMPT_CHUNK]) == graph.nodes  # the API graph has no note: it would not run
    workflow = json.loads(chunks[WORKFLOW_CHUNK])
    notes = [n for n in workflow["nodes"] if n["type"] == "Note"]
    assert [n["widgets_values"] for n in notes] == [list(graph.omitted)]
    assert notes[0]["id"] == workflow["last_node_id"] == len(graph.nodes) + 1
    assert notes[0]["inputs"] == notes[0]["outputs"] == []
    # the workflow still reads back as the same generation
    assert workflow_to_api(workflow)[str(notes[0]["id"])]["class_type"] == "Note"
    assert read_comfy_workflow(workflow).seed == 1234


def test_plain_plans_have_no_note() -> None:
    plan = make_plan()
    assert comfy_graph(plan, seed=1).omitted == ()
    workflow = json.loads(dict(comfy_chunks(plan, seed=1))[WORKFLOW_CHUNK])
    assert all(n["type"] != "Note" for n in workflow["nodes"])


@pytest.mark.parametrize(
    ("prompt", "note"),
    [
        ("a [fox:wolf:0.5] in snow", "Prompt schedule"),
        ("a [fox|wolf]", "Prompt schedule"),
        ("a fox AND a wolf :0.5", "AND"),
    ],
)
def test_a_prompt_schedule_is_written_with_a_note(prompt: str, note: str) -> None:
    plan = make_plan(prompt=prompt, prompt_schedule=plan_prompt_schedule(prompt, "", 25, "DPM++ 2M"))
    graph = comfy_graph(plan, seed=1)
    assert graph.reason is None and graph.omitted == ()
    check_against_schema(graph.nodes)
    assert [n for n in graph.notes if n.startswith(note)]
    workflow = json.loads(dict(comfy_chunks(plan, seed=1))[WORKFLOW_CHUNK])
    assert [n["widgets_values"] for n in workflow["nodes"] if n["type"] == "Note"] == [
        [n] for n in graph.notes
    ]


def test_hires_with_a_controlnet_keeps_the_control_in_the_second_pass() -> None:
    unit = ControlUse("/cn/canny.safetensors", REF, scale=0.8)
    plan = make_plan(controls=(unit,), hires=HiresPlan(scale=1.5, steps=8, denoise=0.5))
    graph = comfy_graph(plan, seed=3).nodes
    check_against_schema(graph)
    first, second = by_type(graph, "KSampler")
    assert second["inputs"]["positive"] == first["inputs"]["positive"]  # the controlled conditioning
    assert len(by_type(graph, "ControlNetApplyAdvanced")) == 1
    # a hires prompt is encoded and controlled again, with the same loader and image
    prompted = comfy_graph(with_hires(plan, prompt="sharp fur"), seed=3).nodes
    check_against_schema(prompted)
    applies = by_type(prompted, "ControlNetApplyAdvanced")
    assert len(applies) == 2 and len(by_type(prompted, "ControlNetLoader")) == 1
    assert applies[0]["inputs"]["control_net"] == applies[1]["inputs"]["control_net"]
    ids = {id(node): key for key, node in prompted.items()}
    second = by_type(prompted, "KSampler")[1]
    assert second["inputs"]["positive"] == [ids[id(applies[1])], 0]
    hires_text = next(n for n in by_type(prompted, "CLIPTextEncode") if n["inputs"]["text"] == "sharp fur")
    assert applies[1]["inputs"]["positive"] == [ids[id(hires_text)], 0]
    # the negative is the first pass's text, controlled once more (not the already controlled one)
    assert applies[1]["inputs"]["negative"] == applies[0]["inputs"]["negative"]


def test_hires_with_a_refiner_gives_no_graph() -> None:
    from ml_lib.diffusion.plan import ModelFormat, ModelRef, RefinerPlan

    refiner = ModelRef("/models/sdxl_refiner.safetensors", ModelFormat.SINGLE_FILE, "sdxl_refiner", name="r")
    plan = make_plan(hires=HiresPlan(scale=1.5, steps=8, denoise=0.5), refiner=RefinerPlan(refiner))
    graph = comfy_graph(plan, seed=3)
    assert graph.nodes == {} and graph.reason is not None and "refiner" in graph.reason
