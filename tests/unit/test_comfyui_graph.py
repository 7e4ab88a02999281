"""Our ComfyUI graph against ComfyUI's node schema (tests/fixtures/comfyui_nodes.json, from its source)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ml_lib.diffusion.output.comfyui import (
    PROMPT_CHUNK,
    WORKFLOW_CHUNK,
    comfy_chunks,
    comfy_graph,
    comfy_text,
)
from ml_lib.diffusion.output.comfyui_names import COMFY_SAMPLERS, COMFY_SCHEDULES, to_comfy_sampler
from ml_lib.diffusion.output.comfyui_sigmas import discrete_sampling, timeline
from ml_lib.diffusion.output.comfyui_workflow import NODE_IO, WIDGET_TYPES, api_to_workflow, widget_names
from ml_lib.diffusion.output.metadata import image_save_kwargs, read_metadata
from ml_lib.diffusion.plan import (
    ControlUse,
    EmbeddingUse,
    GenerationPlan,
    ImageRef,
    InitImage,
    IPAdapterUse,
    LoraUse,
    ModelFormat,
    ModelRef,
)
from ml_lib.diffusion.samplers import SAMPLERS, SamplerChoice, parse_sampler

SCHEMA = json.loads((Path(__file__).parent.parent / "fixtures" / "comfyui_nodes.json").read_text())
LINK_TYPES = {"MODEL", "CLIP", "VAE", "CONDITIONING", "LATENT", "IMAGE", "MASK", "CONTROL_NET"}
REF = ImageRef("/home/u/.ml/inputs/ab/abcdef.png", "ab" * 32, 64, 48)


def make_plan(**overrides: object) -> GenerationPlan:
    values: dict[str, object] = dict(
        prompt="a (red:1.2) fox, [blurry] snow <lora:fur:0.7>",
        negative_prompt="lowres, easyneg",
        model=ModelRef("/models/dream v5.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="dream v5"),
        width=512,
        height=768,
        steps=25,
        cfg_scale=6.5,
        sampler="DPM++ 2M",
        schedule="Karras",
        seed=1234,
        batch_size=2,
        clip_skip=2,
        device="cpu",
        dtype="float32",
        output_dir="/out",
        name_template="[seed]",
        loras=(
            LoraUse("fur", "/loras/fur.safetensors", unet_weight=0.7, te_weight=0.7),
            LoraUse("style", "/loras/sub/style.safetensors", unet_weight=0.5, te_weight=0.25),
        ),
        embeddings=(EmbeddingUse("easyneg", "/emb/easyneg.pt"),),
    )
    values.update(overrides)
    return GenerationPlan(**values)  # type: ignore[arg-type]


def schema_type(spec: list[Any]) -> str:
    kind = spec[0]
    return "COMBO" if isinstance(kind, list) or kind.startswith(("ENUM:", "FILES:")) else kind


def check_against_schema(graph: dict[str, dict[str, Any]]) -> None:
    """Every node exists, every required input is there with the right type, enums are valid, links
    point at an existing node's output of the type the input takes."""
    for node_id, node in graph.items():
        definition = SCHEMA["nodes"][node["class_type"]]
        required = definition["input"]["required"]
        assert set(node["inputs"]) == set(required), (node_id, node["class_type"])
        for name, spec in required.items():
            value = node["inputs"][name]
            kind, options = spec
            if isinstance(kind, str) and kind in LINK_TYPES:
                source_id, index = value
                source = graph[source_id]
                assert SCHEMA["nodes"][source["class_type"]]["output"][index] == kind, (node_id, name)
            elif isinstance(kind, list):
                assert value in kind, (node_id, name, value)
            elif kind.startswith("ENUM:"):
                assert value in SCHEMA["enums"][kind[5:]], (node_id, name, value)
            elif kind.startswith("FILES:"):
                assert isinstance(value, str) and value and "/" not in value, (node_id, name, value)
            elif kind == "STRING":
                assert isinstance(value, str)
            elif kind == "INT":
                assert isinstance(value, int) and not isinstance(value, bool)
                assert options.get("min", -(2**64)) <= value <= options.get("max", 2**64), (
                    node_id,
                    name,
                    value,
                )
            elif kind == "FLOAT":
                assert isinstance(value, (int, float))
                assert options.get("min", -1e9) <= value <= options.get("max", 1e9), (node_id, name, value)
            else:
                pytest.fail(f"unexpected schema type {kind}")


def by_type(graph: dict[str, dict[str, Any]], class_type: str) -> list[dict[str, Any]]:
    return [n for n in graph.values() if n["class_type"] == class_type]


def test_node_table_matches_comfyui_source() -> None:
    for class_type, (inputs, outputs) in NODE_IO.items():
        definition = SCHEMA["nodes"][class_type]
        assert [name for name, _ in inputs] == list(definition["input"]["required"]), class_type
        assert [schema_type(spec) for spec in definition["input"]["required"].values()] == [
            k for _, k in inputs
        ]
        assert list(outputs) == definition["output"], class_type


def test_sampler_names_are_comfyui_enum_values() -> None:
    assert set(COMFY_SAMPLERS.values()) <= set(SCHEMA["enums"]["SAMPLERS"])
    assert set(COMFY_SCHEDULES.values()) | {"ddim_uniform"} <= set(SCHEMA["enums"]["SCHEDULERS"])
    assert to_comfy_sampler(parse_sampler("DPM++ 2M Karras")) == ("dpmpp_2m", "karras")
    assert to_comfy_sampler(parse_sampler("Euler a")) == ("euler_ancestral", "normal")
    assert to_comfy_sampler(parse_sampler("DDIM")) == ("ddim", "ddim_uniform")
    assert to_comfy_sampler(SamplerChoice("DPM++ 3M", "Karras")) is None  # ComfyUI has no plain 3M
    assert set(SAMPLERS) - set(COMFY_SAMPLERS) == {"DPM++ 3M", "PLMS", "TCD"}


def test_txt2img_graph_matches_the_plan_and_the_schema() -> None:
    graph = comfy_graph(make_plan(), seed=1235)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (ckpt,) = by_type(graph.nodes, "CheckpointLoaderSimple")
    assert ckpt["inputs"]["ckpt_name"] == "dream v5.safetensors"
    loras = by_type(graph.nodes, "LoraLoader")
    assert [
        (n["inputs"]["lora_name"], n["inputs"]["strength_model"], n["inputs"]["strength_clip"]) for n in loras
    ] == [
        ("fur.safetensors", 0.7, 0.7),
        ("style.safetensors", 0.5, 0.25),
    ]
    (skip,) = by_type(graph.nodes, "CLIPSetLastLayer")
    assert skip["inputs"]["stop_at_clip_layer"] == -2
    (sampler,) = by_type(graph.nodes, "KSampler")
    inputs = sampler["inputs"]
    assert (inputs["seed"], inputs["steps"], inputs["cfg"], inputs["denoise"]) == (1235, 25, 6.5, 1.0)
    assert (inputs["sampler_name"], inputs["scheduler"]) == ("dpmpp_2m", "karras")
    (latent,) = by_type(graph.nodes, "EmptyLatentImage")
    assert latent["inputs"] == {"width": 512, "height": 768, "batch_size": 1}
    # The chain: sampler model ← second LoRA ← first LoRA ← checkpoint; texts encoded by the clip-skip CLIP.
    model_source = graph.nodes[inputs["model"][0]]
    assert model_source["inputs"]["lora_name"] == "style.safetensors"
    positive = graph.nodes[inputs["positive"][0]]["inputs"]
    assert positive["text"] == "a (red:1.2) fox, (blurry:0.9091) snow "
    assert graph.nodes[positive["clip"][0]]["class_type"] == "CLIPSetLastLayer"
    negative = graph.nodes[inputs["negative"][0]]["inputs"]["text"]
    assert negative == "lowres, embedding:easyneg"


def test_img2img_inpaint_and_controlnet_graph() -> None:
    plan = make_plan(
        init=InitImage(REF, strength=0.55, resize_mode="crop_and_resize", mask=REF),
        controls=(
            ControlUse("/cn/control_canny.safetensors", REF, scale=0.8, guidance_end=0.6, name="canny"),
        ),
        loras=(),
        clip_skip=1,
    )
    graph = comfy_graph(plan, seed=7)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    assert not by_type(graph.nodes, "EmptyLatentImage") and not by_type(graph.nodes, "CLIPSetLastLayer")
    (sampler,) = by_type(graph.nodes, "KSampler")
    # our engine (as A1111) runs int(25 x 0.55) + 1 = 14 steps of 25; ComfyUI the last 14 of int(14 / 0.55) = 25
    assert (sampler["inputs"]["steps"], sampler["inputs"]["denoise"]) == (14, 0.55)
    latent = graph.nodes[sampler["inputs"]["latent_image"][0]]
    assert latent["class_type"] == "SetLatentNoiseMask"
    assert graph.nodes[latent["inputs"]["mask"][0]]["inputs"] == {"image": "abcdef.png", "channel": "red"}
    (scale,) = by_type(graph.nodes, "ImageScale")
    assert (scale["inputs"]["width"], scale["inputs"]["height"], scale["inputs"]["crop"]) == (
        512,
        768,
        "center",
    )
    (apply,) = by_type(graph.nodes, "ControlNetApplyAdvanced")
    assert (
        apply["inputs"]["strength"],
        apply["inputs"]["start_percent"],
        apply["inputs"]["end_percent"],
    ) == (0.8, 0.0, 0.96)
    # diffusers uses the unit at calls 0-6 of 13 ((i + 1) / 13 <= 0.6); ComfyUI's percents count its whole
    # noise range, and percent 0.96 is the sigma between those calls 6 and 7 of this run
    calls = timeline("dpmpp_2m", "karras", 13, 0.52).calls
    assert calls[7] < discrete_sampling().percent_to_sigma(0.96) < calls[6]
    assert sampler["inputs"]["positive"] == [next(k for k, n in graph.nodes.items() if n is apply), 0]
    assert sampler["inputs"]["negative"][1] == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"sampler": "PLMS", "schedule": "Uniform"}, "no sampler PLMS"),
        ({"prompt": "a [cat:dog:5] on a mat"}, "scheduling"),
        ({"prompt": "a cat AND a dog"}, "AND"),
        ({"ip_adapters": (IPAdapterUse("/ip", "ip.safetensors", REF),)}, "IP-Adapter"),
        ({"controls": (ControlUse("/cn/x.safetensors", REF, control_type="canny"),)}, "preprocessor"),
        ({"init": InitImage(REF, resize_mode="resize_and_fill")}, "resize_and_fill"),
        ({"cfg_scale": 120.0}, "KSampler"),
        ({"controls": (ControlUse("/cn/x.safetensors", REF, scale=12.0),)}, "ControlNetApplyAdvanced"),
    ],
)
def test_no_graph_when_comfyui_cannot_express_the_plan(overrides: dict[str, object], reason: str) -> None:
    graph = comfy_graph(make_plan(**overrides), seed=1)
    assert graph.nodes == {} and graph.reason is not None and reason in graph.reason
    assert comfy_chunks(make_plan(**overrides), seed=1) == ()


def test_comfy_text_escapes_and_flattens_weights() -> None:
    assert comfy_text(r"a \(literal\) ((nested)) [[low]]") == r"a \(literal\) (nested:1.21) (low:0.8264)"
    assert comfy_text("plain <lora:x:1> text") == "plain  text"


def test_workflow_links_and_widgets_follow_the_schema() -> None:
    graph = comfy_graph(make_plan(), seed=99).nodes
    workflow = api_to_workflow(graph)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert workflow["last_node_id"] == len(graph) and workflow["last_link_id"] == len(workflow["links"])
    for link_id, source, slot, target, target_slot, kind in workflow["links"]:
        assert SCHEMA["nodes"][nodes[source]["type"]]["output"][slot] == kind
        assert nodes[target]["inputs"][target_slot] == {
            "name": nodes[target]["inputs"][target_slot]["name"],
            "type": kind,
            "link": link_id,
        }
        assert link_id in nodes[source]["outputs"][slot]["links"]
    for node in workflow["nodes"]:
        names = widget_names(node["type"])
        required = SCHEMA["nodes"][node["type"]]["input"]["required"]
        assert names == tuple(n for n, spec in required.items() if schema_type(spec) in WIDGET_TYPES)
        extras = 1 if "seed" in names or node["type"] in ("LoadImage", "LoadImageMask") else 0
        assert len(node["widgets_values"]) == len(names) + extras
    (sampler,) = [n for n in workflow["nodes"] if n["type"] == "KSampler"]
    assert sampler["widgets_values"] == [99, "fixed", 25, 6.5, "dpmpp_2m", "karras", 1.0]


def test_png_carries_both_chunks_and_they_read_back(tmp_path: Path) -> None:
    plan = make_plan()
    chunks = comfy_chunks(plan, seed=5)
    assert [key for key, _ in chunks] == [PROMPT_CHUNK, WORKFLOW_CHUNK]
    assert all(value.isascii() for _, value in chunks)  # plain tEXt, as ComfyUI writes it
    buf = io.BytesIO()
    image_save_kwargs("png", "a fox\nSteps: 2, Seed: 5, Size: 8x8", plan.to_json(), extra_chunks=chunks).save(
        Image.new("RGB", (8, 8)), buf
    )
    reread = Image.open(io.BytesIO(buf.getvalue()))
    assert json.loads(reread.info["prompt"]) == comfy_graph(plan, seed=5).nodes
    assert json.loads(reread.info["workflow"])["version"] == 0.4
    assert read_metadata(io.BytesIO(buf.getvalue())).plan == plan
    jpeg = image_save_kwargs("jpg", "a fox", None, extra_chunks=chunks)
    assert jpeg.text_chunks == ()  # only PNG carries the graph
