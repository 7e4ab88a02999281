"""A1111's hires fix and the SDXL refiner in our ComfyUI graphs: the core nodes that do what A1111 does,
checked against the node schema transcribed from ComfyUI's source, and no graph where they would not."""

from __future__ import annotations

import dataclasses

import pytest

from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.output.comfyui_workflow import api_to_workflow
from ml_lib.diffusion.plan import HiresPlan, ModelFormat, ModelRef, RefinerPlan

from .test_comfyui_graph import by_type, check_against_schema, make_plan


def _hires(**fields: object) -> HiresPlan:
    return dataclasses.replace(HiresPlan(scale=2.0, steps=10, denoise=0.45), **fields)  # type: ignore[arg-type]


def test_latent_hires_is_latent_upscale_then_a_second_ksampler() -> None:
    plan = make_plan(hires=_hires(upscaler="Latent (bicubic)"))
    graph = comfy_graph(plan, seed=7).nodes
    check_against_schema(graph)
    (upscale,) = by_type(graph, "LatentUpscale")
    assert upscale["inputs"] | {"samples": None} == {
        "samples": None,
        "upscale_method": "bicubic",
        "width": plan.width * 2,
        "height": plan.height * 2,
        "crop": "disabled",
    }
    first, second = by_type(graph, "KSampler")
    ids = {id(node): key for key, node in graph.items()}
    assert upscale["inputs"]["samples"] == [ids[id(first)], 0]
    assert second["inputs"]["latent_image"] == [ids[id(upscale)], 0]
    assert (second["inputs"]["steps"], second["inputs"]["denoise"], second["inputs"]["seed"]) == (10, 0.45, 7)
    assert second["inputs"]["positive"] == first["inputs"]["positive"]  # no hires prompt: the same text
    (decode,) = by_type(graph, "VAEDecode")
    assert decode["inputs"]["samples"] == [ids[id(second)], 0]
    api_to_workflow(graph)  # the UI workflow of it builds


def test_lanczos_hires_decodes_scales_and_encodes_and_a_hires_prompt_is_encoded() -> None:
    plan = make_plan(hires=_hires(upscaler="Lanczos", steps=0, prompt="sharp details"))
    graph = comfy_graph(plan, seed=7).nodes
    check_against_schema(graph)
    (scale,) = by_type(graph, "ImageScale")
    assert (scale["inputs"]["upscale_method"], scale["inputs"]["width"]) == ("lanczos", plan.width * 2)
    assert len(by_type(graph, "VAEDecode")) == 2 and len(by_type(graph, "VAEEncode")) == 1
    second = by_type(graph, "KSampler")[1]
    assert second["inputs"]["steps"] == plan.steps  # Hires steps 0: the first pass's
    texts = [n["inputs"]["text"] for n in by_type(graph, "CLIPTextEncode")]
    assert "sharp details" in texts


@pytest.mark.parametrize(
    ("hires", "reason"),
    [
        (_hires(upscaler="Latent (antialiased)"), "no ComfyUI core node"),
        (_hires(upscaler="Nearest"), "no ComfyUI core node"),
        (_hires(upscaler="4x-UltraSharp", upscaler_path="/up/4x.safetensors"), "no ComfyUI core node"),
        (_hires(resize_width=1024, resize_height=768), "resize"),
        (_hires(prompt="[a:b:0.5]"), "scheduling"),
    ],
)
def test_no_graph_for_a_hires_fix_the_core_nodes_would_run_differently(hires: HiresPlan, reason: str) -> None:
    graph = comfy_graph(make_plan(hires=hires), seed=1)
    assert graph.nodes == {} and graph.reason is not None and reason in graph.reason


def test_the_refiner_is_two_ksampler_advanced_passes_split_at_the_switch() -> None:
    refiner = ModelRef("/models/sdxl_refiner.safetensors", ModelFormat.SINGLE_FILE, "sdxl_refiner", name="r")
    plan = make_plan(refiner=RefinerPlan(refiner, switch_at=0.8), steps=25)
    graph = comfy_graph(plan, seed=5).nodes
    check_against_schema(graph)
    assert not by_type(graph, "KSampler")
    base, ref = by_type(graph, "KSamplerAdvanced")
    assert (base["inputs"]["add_noise"], base["inputs"]["return_with_leftover_noise"]) == ("enable", "enable")
    assert (base["inputs"]["start_at_step"], base["inputs"]["end_at_step"]) == (0, 20)
    assert (ref["inputs"]["add_noise"], ref["inputs"]["start_at_step"], ref["inputs"]["end_at_step"]) == (
        "disable",
        20,
        10000,
    )
    ids = {id(node): key for key, node in graph.items()}
    assert ref["inputs"]["latent_image"] == [ids[id(base)], 0]
    loaders = by_type(graph, "CheckpointLoaderSimple")
    assert [n["inputs"]["ckpt_name"] for n in loaders][1] == "sdxl_refiner.safetensors"
    (decode,) = by_type(graph, "VAEDecode")
    assert decode["inputs"]["vae"] == [ids[id(loaders[1])], 2]  # decoded by the refiner's VAE
    workflow = api_to_workflow(graph)
    widgets = [n["widgets_values"] for n in workflow["nodes"] if n["type"] == "KSamplerAdvanced"]
    assert widgets[0][:3] == ["enable", 5, "fixed"]  # the frontend's seed control after noise_seed


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_a_hires_checkpoint_is_a_second_checkpoint_loader_for_the_second_ksampler(upscaler: str) -> None:
    detail = ModelRef("/models/sub/detail v2.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="detail v2")
    plan = make_plan(hires=_hires(upscaler=upscaler, checkpoint=detail))
    graph = comfy_graph(plan, seed=7).nodes
    check_against_schema(graph)
    ids = {id(node): key for key, node in graph.items()}
    base, second_ckpt = by_type(graph, "CheckpointLoaderSimple")
    assert (base["inputs"]["ckpt_name"], second_ckpt["inputs"]["ckpt_name"]) == (
        "dream v5.safetensors",
        "detail v2.safetensors",
    )
    b, s = ids[id(base)], ids[id(second_ckpt)]
    # the plan's LoRAs and clip skip on both models (A1111 activates the networks again after the switch)
    loras = by_type(graph, "LoraLoader")
    assert [n["inputs"]["lora_name"] for n in loras] == ["fur.safetensors", "style.safetensors"] * 2
    assert (loras[0]["inputs"]["model"], loras[2]["inputs"]["model"]) == ([b, 0], [s, 0])
    skips = by_type(graph, "CLIPSetLastLayer")
    assert [n["inputs"]["clip"] for n in skips] == [[ids[id(loras[1])], 1], [ids[id(loras[3])], 1]]
    first, second = by_type(graph, "KSampler")
    assert first["inputs"]["model"] == [ids[id(loras[1])], 0]
    assert second["inputs"]["model"] == [ids[id(loras[3])], 0]
    # the second pass's prompts are encoded with the second model's text encoder
    encodes = {key: n for key, n in graph.items() if n["class_type"] == "CLIPTextEncode"}
    second_clip = [ids[id(skips[1])], 0]
    positive = encodes[second["inputs"]["positive"][0]]
    assert (
        positive["inputs"]["clip"] == second_clip
        and first["inputs"]["positive"] != second["inputs"]["positive"]
    )
    # decoded with the second model's VAE; an image upscaler decodes the first pass with the first's
    decodes = by_type(graph, "VAEDecode")
    assert decodes[-1]["inputs"]["vae"] == [s, 2]
    if upscaler == "Lanczos":
        assert decodes[0]["inputs"]["vae"] == [b, 2]
        (encode,) = by_type(graph, "VAEEncode")
        assert encode["inputs"]["vae"] == [s, 2]
    api_to_workflow(graph)
