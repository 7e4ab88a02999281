"""Other tools' images read into requests: A1111, Forge, SD.Next, ComfyUI, InvokeAI, Fooocus.

The sample images are written here from each tool's documented format (key names looked up in their
sources: A1111/SD.Next infotext writers, ComfyUI's SaveImage, InvokeAI's CoreMetadataInvocation and its
legacy importer, Fooocus's meta_parser.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.output.comfyui_workflow import api_to_workflow
from ml_lib.diffusion.output.foreign import ForeignLora, ForeignMetadata
from ml_lib.diffusion.output.foreign.comfy import read_comfy_prompt, read_comfy_workflow
from ml_lib.diffusion.output.metadata import encode_user_comment, read_metadata
from ml_lib.diffusion.plan import GenerationPlan, LoraUse, ModelFormat, ModelRef
from ml_lib.diffusion.request import LoraRequest


def png(**chunks: str) -> io.BytesIO:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key.replace("_dash_", "-"), value)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    buf.seek(0)
    return buf


def foreign(buf: io.BytesIO) -> ForeignMetadata:
    meta = read_metadata(buf)
    assert meta.foreign_error is None, meta.foreign_error
    assert meta.foreign is not None
    return meta.foreign


def reasons(meta: ForeignMetadata) -> dict[str, str]:
    return {item.key: item.reason for item in meta.unmapped}


A1111 = (
    "masterpiece, a (red:1.2) fox <lora:fur:0.7>\n"
    "Negative prompt: lowres, bad hands\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592, Size: 512x768, "
    "Model hash: 6ce0161689, Model: dreamshaper_8, Clip skip: 2, Denoising strength: 0.45, Hires upscale: 2, "
    'Hires steps: 10, Hires upscaler: Latent, Lora hashes: "fur: 0123456789ab", ENSD: 31337, '
    'ControlNet 0: "Module: canny, Model: control_canny [e3fe7712], Weight: 1", Version: v1.10.1'
)


def test_a1111_png_maps_every_supported_field_and_lists_the_rest() -> None:
    meta = foreign(png(parameters=A1111))
    assert meta.tool == "A1111" and meta.source == "parameters"
    assert meta.prompt == "masterpiece, a (red:1.2) fox <lora:fur:0.7>"  # tags stay: the resolver reads them
    assert meta.negative_prompt == "lowres, bad hands"
    assert (meta.steps, meta.sampler, meta.schedule, meta.cfg_scale) == (28, "DPM++ 2M", "Karras", 6.5)
    assert (meta.seed, meta.width, meta.height, meta.clip_skip) == (3141592, 512, 768, 2)
    assert (meta.model, meta.model_hash) == ("dreamshaper_8", "6ce0161689")
    why = reasons(meta)
    assert set(why) == {"ENSD", "ControlNet 0"}
    assert "control image" in why["ControlNet 0"]
    assert dict(meta.passes) == {  # the hires fix, with its second pass's strength
        "hires": True,
        "hires_scale": 2.0,
        "hires_steps": 10,
        "hires_upscaler": "Latent",
        "hires_denoise": 0.45,
    }
    request = meta.to_request(model="/models/mine.safetensors")
    assert request.model == "/models/mine.safetensors" and request.prompt == meta.prompt
    assert (request.steps, request.sampler, request.schedule, request.seed, request.batch_size) == (
        28,
        "DPM++ 2M",
        "Karras",
        3141592,
        1,
    )
    assert (request.width, request.height, request.cfg_scale, request.clip_skip) == (512, 768, 6.5, 2)
    assert request.auto is False and request.learn is False  # nothing added or learned on top of theirs
    assert (request.hires, request.hires_scale, request.hires_steps, request.hires_denoise) == (
        True,
        2.0,
        10,
        0.45,
    )


def test_pre_19_sampler_forge_and_jpeg() -> None:
    text = (
        "a cat\nSteps: 20, Sampler: DPM++ SDE Karras, CFG scale: 7, Seed: 1, Size: 64x64, "
        "Version: f2.0.1v1.10.1-previous-313"
    )
    meta = foreign(png(parameters=text))
    assert (meta.tool, meta.sampler, meta.schedule) == ("Forge", "DPM++ SDE", "Karras")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = encode_user_comment(text.replace("f2.0.1v1.10.1-previous-313", "v1.9.4"))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", exif=exif.tobytes())
    buf.seek(0)
    assert foreign(buf).tool == "A1111"


def test_sd_next_infotext() -> None:
    text = (
        "portrait of a knight\nNegative prompt: blurry\n"
        "Steps: 30, Size: 640x832, Sampler: Euler a, Seed: 99, CFG scale: 5, CFG rescale: 0.7, Clip skip: 2, "
        "App: SD.Next, Version: 8e7a3f2, Pipeline: StableDiffusionPipeline, Operations: txt2img, "
        "Model: realistic, Variation seed: 5, Variation strength: 0.3"
    )
    meta = foreign(png(parameters=text))
    assert (meta.tool, meta.sampler, meta.schedule, meta.width, meta.height) == (
        "SD.Next",
        "Euler a",
        "Uniform",
        640,
        832,
    )
    assert set(reasons(meta)) == {"CFG rescale", "Variation seed", "Variation strength"}
    karras = foreign(
        png(parameters="x\nSteps: 4, Sampler: DPM++ 2M, Sampler sigma: karras, App: SD.Next, Seed: 2")
    )
    assert karras.schedule == "Karras"


def comfy_api_graph() -> dict[str, Any]:
    """ComfyUI's default workflow with a LoRA, clip skip and a hires second pass, as SaveImage writes it."""
    return {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sd15/dreamshaper_8.safetensors"},
        },
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["4", 0],
                "clip": ["4", 1],
                "lora_name": "fur.safetensors",
                "strength_model": 0.8,
                "strength_clip": 0.6,
            },
        },
        "11": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["10", 1], "stop_at_clip_layer": -2}},
        "6": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "a [bracketed] (fox:1.3)", "clip": ["11", 0]},
        },
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["11", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 640, "batch_size": 1}},
        "20": {"class_type": "PrimitiveNode", "inputs": {"value": 8566257}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": ["20", 0],
                "steps": 20,
                "cfg": 8.0,
                "sampler_name": "dpmpp_2m_sde_gpu",
                "scheduler": "karras",
                "denoise": 1.0,
                "model": ["10", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "12": {
            "class_type": "LatentUpscaleBy",
            "inputs": {"samples": ["3", 0], "upscale_method": "nearest-exact", "scale_by": 1.5},
        },
        "13": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1,
                "steps": 10,
                "cfg": 8.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 0.5,
                "model": ["10", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["12", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }


def test_comfyui_api_graph_reads_the_first_pass() -> None:
    meta = foreign(png(prompt=json.dumps(comfy_api_graph())))
    assert (meta.tool, meta.source, meta.model) == ("ComfyUI", "prompt", "dreamshaper_8")
    assert meta.prompt == r"a \[bracketed\] (fox:1.3)"  # ComfyUI's [ ] are literal; escaped for A1111 syntax
    assert meta.negative_prompt == "text, watermark"
    assert (meta.seed, meta.steps, meta.cfg_scale, meta.sampler, meta.schedule) == (
        8566257,
        20,
        8.0,
        "DPM++ 2M SDE",
        "Karras",
    )
    assert (meta.width, meta.height, meta.clip_skip) == (512, 640, 2)
    assert meta.loras == (ForeignLora("fur", 0.8, 0.6),)
    assert list(reasons(meta)) == ["node 13 (KSampler)"]
    assert "second sampling pass" in reasons(meta)["node 13 (KSampler)"]
    assert meta.to_request().loras == (LoraRequest("fur", 0.8, 0.6),)


def test_comfyui_workflow_only_reads_like_the_api_graph() -> None:
    graph = {k: v for k, v in comfy_api_graph().items() if k not in ("12", "13", "20")}
    graph["3"]["inputs"]["seed"] = 5
    graph["8"]["inputs"]["samples"] = ["3", 0]
    from_api = read_comfy_prompt(graph)
    from_ui = foreign(png(workflow=json.dumps(api_to_workflow(_with_meta(graph)))))
    assert from_ui.source == "workflow" and from_ui.unmapped == ()
    assert from_ui.mapped() == from_api.mapped() and from_ui.loras == from_api.loras


def _with_meta(graph: dict[str, Any]) -> dict[str, Any]:
    return {k: {**v, "_meta": {"title": v["class_type"]}} for k, v in graph.items()}


def test_our_graph_reads_back_as_the_same_settings() -> None:
    plan = GenerationPlan(
        prompt="a (red:1.2) fox <lora:fur:0.7>",
        negative_prompt="blurry",
        model=ModelRef("/m/dream.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="dream"),
        width=512,
        height=768,
        steps=25,
        cfg_scale=6.5,
        sampler="Euler a",
        schedule="Uniform",
        seed=9,
        batch_size=1,
        clip_skip=2,
        device="cpu",
        dtype="float32",
        output_dir="/o",
        name_template="[seed]",
        loras=(LoraUse("fur", "/l/fur.safetensors", 0.7, 0.5),),
    )
    graph = comfy_graph(plan, seed=9).nodes
    for meta in (read_comfy_prompt(graph), read_comfy_workflow(api_to_workflow(graph))):
        assert (meta.model, meta.prompt, meta.negative_prompt) == ("dream", "a (red:1.2) fox ", "blurry")
        assert (meta.sampler, meta.schedule, meta.seed, meta.steps, meta.cfg_scale) == (
            "Euler a",
            "Uniform",
            9,
            25,
            6.5,
        )
        assert (meta.width, meta.height, meta.clip_skip, meta.unmapped) == (512, 768, 2, ())
        assert meta.loras == (ForeignLora("fur", 0.7, 0.5),)


def test_an_image_of_ours_without_its_plan_reads_as_ml_diffusion() -> None:
    meta = read_metadata(png(parameters="a cat\nSteps: 2, Seed: 1, Size: 8x8, Version: ml-lib v1"))
    assert meta.foreign is not None and meta.foreign.tool == "ml-diffusion"


@pytest.mark.parametrize("chunk", ["prompt", "workflow", "invokeai_metadata", "sd_dash_metadata"])
def test_no_usable_graph_is_not_an_error(chunk: str) -> None:
    data = {"prompt": {}, "workflow": {"nodes": []}, "invokeai_metadata": {}, "sd_dash_metadata": {}}[chunk]
    meta = foreign(png(**{chunk: json.dumps(data)}))
    assert meta.prompt == "" and meta.seed is None
