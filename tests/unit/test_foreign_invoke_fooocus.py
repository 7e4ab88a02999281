"""InvokeAI (``invokeai_metadata`` 3.x/4.x, legacy ``sd-metadata``) and Fooocus (JSON and A1111 schemes)
images read into requests; samples written from the key names in their sources (InvokeAI's
CoreMetadataInvocation and legacy importer, Fooocus's modules/meta_parser.py)."""

from __future__ import annotations

import io
import json

from PIL import Image

from ml_lib.diffusion.output.foreign import ForeignLora
from ml_lib.diffusion.output.foreign.invoke import INVOKE_SCHEDULERS
from ml_lib.diffusion.output.metadata import encode_user_comment
from ml_lib.diffusion.samplers import parse_sampler

from .test_foreign_metadata import foreign, png, reasons

INVOKE_4 = {
    "app_version": "4.2.9",
    "generation_mode": "sdxl_txt2img",
    "positive_prompt": "a lighthouse at dusk",
    "negative_prompt": "",
    "width": 1024,
    "height": 1024,
    "seed": 4242,
    "rand_device": "cpu",
    "cfg_scale": 7.5,
    "cfg_rescale_multiplier": 0,
    "steps": 30,
    "scheduler": "dpmpp_2m_k",
    "clip_skip": 1,
    "model": {"key": "a1b2", "hash": "blake3:ff", "name": "juggernautXL", "base": "sdxl", "type": "main"},
    "loras": [
        {
            "model": {
                "key": "c3",
                "hash": "blake3:aa",
                "name": "detail-tweaker",
                "base": "sdxl",
                "type": "lora",
            },
            "weight": 0.6,
        }
    ],
    "hrf_enabled": True,
    "hrf_method": "ESRGAN",
    "hrf_strength": 0.45,
    "positive_style_prompt": "cinematic",
    "seamless_x": False,
}


def test_invokeai_4_metadata() -> None:
    meta = foreign(png(invokeai_metadata=json.dumps(INVOKE_4)))
    assert (meta.tool, meta.model, meta.prompt, meta.seed, meta.steps) == (
        "InvokeAI",
        "juggernautXL",
        "a lighthouse at dusk",
        4242,
        30,
    )
    assert (meta.sampler, meta.schedule, meta.cfg_scale, meta.clip_skip) == ("DPM++ 2M", "Karras", 7.5, 2)
    assert meta.loras == (ForeignLora("detail-tweaker", 0.6, 0.6),)
    assert set(reasons(meta)) == {"hrf_enabled", "hrf_method", "hrf_strength", "positive_style_prompt"}


def test_invokeai_3_metadata_and_legacy_sd_metadata() -> None:
    v3 = {
        "generation_mode": "img2img",
        "positive_prompt": "landscape",
        "negative_prompt": "low quality",
        "width": 768,
        "height": 432,
        "seed": 356120443,
        "rand_device": "cuda",
        "cfg_scale": 7.5,
        "steps": 50,
        "scheduler": "dpmpp_2m_sde_k",
        "clip_skip": 0,
        "model": {"model_name": "amixx_3Prunedfp16", "base_model": "sd-1", "model_type": "main"},
        "loras": [{"lora": {"model_name": "film", "base_model": "sd-1"}, "weight": 0.75}],
        "strength": 0.7,
        "init_image": "abc.png",
    }
    meta = foreign(png(invokeai_metadata=json.dumps(v3)))
    assert (meta.model, meta.sampler, meta.schedule, meta.clip_skip) == (
        "amixx_3Prunedfp16",
        "DPM++ 2M SDE",
        "Karras",
        1,
    )
    assert meta.loras == (ForeignLora("film", 0.75, 0.75),)
    assert {"strength", "init_image", "generation_mode", "rand_device"} <= set(reasons(meta))
    legacy = {
        "model": "stable diffusion",
        "model_weights": "stable-diffusion-1.5",
        "model_hash": "cc6cb27103",
        "app_id": "invoke-ai/InvokeAI",
        "app_version": "2.2.5",
        "image": {
            "prompt": [{"prompt": "a castle [fog, blurry]", "weight": 1.0}],
            "steps": 50,
            "cfg_scale": 7.5,
            "threshold": 0,
            "perlin": 0,
            "height": 512,
            "width": 512,
            "seed": 1979,
            "seamless": False,
            "hires_fix": False,
            "type": "txt2img",
            "postprocessing": None,
            "sampler": "k_euler_a",
            "variations": [],
        },
    }
    old = foreign(png(sd_dash_metadata=json.dumps(legacy)))
    assert (old.source, old.model, old.prompt, old.negative_prompt) == (
        "sd-metadata",
        "stable-diffusion-1.5",
        "a castle",
        "fog, blurry",
    )
    assert (old.sampler, old.seed, old.steps, old.unmapped) == ("Euler a", 1979, 50, ())


def test_every_invokeai_scheduler_maps_to_a_valid_choice() -> None:
    for sampler, schedule in INVOKE_SCHEDULERS.values():
        assert parse_sampler(sampler, schedule).schedule == schedule


FOOOCUS = {
    "adaptive_cfg": 7,
    "adm_guidance": "(1.5, 0.8, 0.3)",
    "base_model": "juggernautXL_v8Rundiffusion.safetensors",
    "base_model_hash": "aeb7e9e689",
    "clip_skip": 2,
    "full_negative_prompt": ["unrealistic", "blurry"],
    "full_prompt": ["a cat, highly detailed", "cinematic still of a cat"],
    "guidance_scale": 4,
    "lora_combined_1": "sd_xl_offset_example-lora_1.0.safetensors : 0.1",
    "loras": [["sd_xl_offset_example-lora_1.0", 0.1, "4852686128"]],
    "metadata_scheme": "fooocus",
    "negative_prompt": "",
    "performance": "Speed",
    "prompt": "a cat",
    "refiner_model": "None",
    "refiner_switch": 0.5,
    "resolution": "(1152, 896)",
    "sampler": "dpmpp_2m_sde_gpu",
    "scheduler": "karras",
    "seed": "1234567",
    "sharpness": 2,
    "steps": 30,
    "styles": "['Fooocus V2', 'Fooocus Enhance']",
    "vae": "Default (model)",
    "version": "Fooocus v2.5.5",
}


def test_fooocus_json_png_and_jpeg() -> None:
    meta = foreign(png(parameters=json.dumps(FOOOCUS), fooocus_scheme="fooocus"))
    assert (meta.tool, meta.model, meta.width, meta.height) == (
        "Fooocus",
        "juggernautXL_v8Rundiffusion",
        1152,
        896,
    )
    assert meta.prompt == "a cat, highly detailed, cinematic still of a cat"
    assert meta.negative_prompt == "unrealistic, blurry"
    assert (meta.sampler, meta.schedule, meta.cfg_scale, meta.seed, meta.steps, meta.clip_skip) == (
        "DPM++ 2M SDE",
        "Karras",
        4.0,
        1234567,
        30,
        2,
    )
    assert meta.loras == (ForeignLora("sd_xl_offset_example-lora_1.0", 0.1, 0.1),)
    assert set(reasons(meta)) == {"adaptive_cfg", "adm_guidance", "sharpness", "vae"}
    exif = Image.Exif()  # Fooocus JPEG: UserComment = the JSON, MakerNote = the scheme
    exif.get_ifd(0x8769)[0x9286] = encode_user_comment(json.dumps(FOOOCUS))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", exif=exif.tobytes())
    buf.seek(0)
    assert foreign(buf).mapped() == meta.mapped()


def test_fooocus_a1111_scheme() -> None:
    text = (
        "a cat, highly detailed\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: dpmpp_2m_sde_gpu, Scheduler: karras, CFG scale: 4, Seed: 12, Size: 1152x896, "
        "Sharpness: 2, Performance: Speed, Model: juggernautXL, Version: Fooocus v2.5.5"
    )
    meta = foreign(png(parameters=text, fooocus_scheme="a1111"))
    assert (meta.tool, meta.sampler, meta.schedule) == ("Fooocus", "DPM++ 2M SDE", "Karras")
    assert set(reasons(meta)) == {"Sharpness"}
