"""A1111 infotext: exact layout when writing, A1111-compatible parsing of texts from four UIs."""

from __future__ import annotations

import dataclasses

import pytest

from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.output.infotext import format_cfg, format_infotext, parse_infotext, quote, unquote
from ml_lib.diffusion.plan import GenerationPlan, LoraUse, ModelFormat, ModelRef


def make_plan(**overrides: object) -> GenerationPlan:
    values: dict[str, object] = dict(
        prompt="a cat on a mat",
        negative_prompt="blurry",
        model=ModelRef("/m/dreamshaper_8.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="dreamshaper_8"),
        width=512,
        height=768,
        steps=20,
        cfg_scale=7.0,
        sampler="DPM++ 2M",
        schedule="Karras",
        seed=123,
        batch_size=1,
        clip_skip=2,
        device="cpu",
        dtype="float32",
        output_dir="/out",
        name_template="[seed]",
    )
    values.update(overrides)
    return GenerationPlan(**values)  # type: ignore[arg-type]


A1111_19 = """masterpiece, best quality, 1girl, (smile:1.2), <lora:add_detail:0.5>, looking at viewer
Negative prompt: (worst quality, low quality:1.4), easynegative
Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3452453452, Size: 512x768, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.4, Clip skip: 2, \
ADetailer model: face_yolov8n.pt, ADetailer prompt: "detailed face, \\"smile\\", blue eyes", \
ADetailer confidence: 0.3, ADetailer dilate erode: 4, ADetailer mask blur: 4, \
ADetailer denoising strength: 0.4, ADetailer inpaint only masked: True, ADetailer inpaint padding: 32, \
ADetailer version: 24.4.2, Hires upscale: 2, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B, \
Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "easynegative: c74b4e810b03", Version: v1.9.4"""

A1111_OLD = """photo of a red fox in the snow, 85mm, bokeh
Negative prompt: cartoon, painting
Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234567890, Size: 768x512, \
Model hash: 4199bcdd14, Model: realisticVisionV51_v51VAE, Version: v1.6.0"""

FORGE = """cinematic photo of a lighthouse at dusk, <lora:flux_realism:0.8>
Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 42, \
Size: 896x1152, Model hash: bea01d51bd, Model: flux1-dev-bnb-nf4-v2, Lora hashes: "flux_realism: \
0123456789ab", Version: f2.0.1v1.10.1-previous-313-g8a042934, Module 1: ae, Module 2: clip_l, \
Module 3: t5xxl_fp16"""

SDNEXT = """a photo of an astronaut riding a horse on mars
Negative prompt: lowres, blurry
Steps: 20, Seed: 1620085323, Sampler: DPM++ 2M, CFG scale: 6, Size: 1024x1024, Parser: Full parser, \
Model: sd_xl_base_1.0, Model hash: 31e35c80fc, Backend: Diffusers, App: SD.Next, Version: 0b39d8f, \
Operations: txt2img, Pipeline: StableDiffusionXLPipeline"""

FOOOCUS = """a cat sitting on a windowsill, intricate, elegant, highly detailed, sharp focus, \
cinematic lighting
Negative prompt: (worst quality, low quality, normal quality, lowres:1.4), watermark
ADM Guidance: "(1.5, 0.8, 0.3)", CFG scale: 4.0, Fooocus V2 Expansion: "intricate, elegant, highly \
detailed, sharp focus, cinematic lighting", Model: juggernautXL_v8Rundiffusion, Model hash: aeb7e9e689, \
Performance: Speed, Raw negative prompt: , Raw prompt: a cat sitting on a windowsill, Refiner Swap Method: \
joint, Sampler: DPM++ 2M SDE Karras, Scheduler: karras, Seed: 1871379427, Sharpness: 2.0, Size: 1152x896, \
Steps: 30, Styles: "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']", VAE: Default (model), \
Version: Fooocus v2.5.5"""


# --- writing -------------------------------------------------------------------------------------


def test_format_layout_is_a1111_19() -> None:
    text = format_infotext(make_plan(), seed=124, model_hash="abcdef1234", version="v0.1.0")
    assert text == (
        "a cat on a mat\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 124, Size: 512x768, "
        "Model hash: abcdef1234, Model: dreamshaper_8, Clip skip: 2, Version: v0.1.0"
    )


def test_format_omits_empty_negative_missing_hash_and_clip_skip_one() -> None:
    plan = make_plan(negative_prompt="", clip_skip=1, cfg_scale=7.5)
    text = format_infotext(plan, seed=1, model_hash=None, version="v1")
    assert text.splitlines() == [
        "a cat on a mat",
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1, Size: 512x768, "
        "Model: dreamshaper_8, Version: v1",
    ]


def test_extra_pairs_go_before_version_and_are_quoted() -> None:
    text = format_infotext(
        make_plan(),
        seed=1,
        model_hash=None,
        version="v1",
        extra=[("Denoising strength", "0.4"), ("ADetailer prompt", "face, smile")],
    )
    assert text.endswith(
        'Clip skip: 2, Denoising strength: 0.4, ADetailer prompt: "face, smile", Version: v1'
    )


def test_loras_become_prompt_tags_and_lora_hashes() -> None:
    loras = (
        LoraUse("detail", "/l/detail.safetensors", 0.5, 0.5, "0123456789ab"),
        LoraUse("style", "/l/style.safetensors", 0.8, 0.4, "ba9876543210"),
        LoraUse("nohash", "/l/nohash.safetensors", 1.0, 1.0, None),
    )
    text = format_infotext(make_plan(loras=loras), seed=1, model_hash=None, version="v1")
    info = parse_infotext(text)
    assert info.prompt == "a cat on a mat <lora:detail:0.5> <lora:style:0.4:0.8> <lora:nohash:1>"
    assert info.lora_hashes == (("detail", "0123456789ab"), ("style", "ba9876543210"))
    already = make_plan(prompt="a cat <lora:detail:0.5>", loras=loras[:1])
    assert (
        parse_infotext(format_infotext(already, seed=1, model_hash=None, version="v1")).prompt
        == already.prompt
    )


@pytest.mark.parametrize("key", ["Seed", "Bad: key", "a,b", " padded"])
def test_extra_rejects_bad_or_standard_keys(key: str) -> None:
    with pytest.raises(RequestError, match="Infotext key"):
        format_infotext(make_plan(), seed=1, model_hash=None, version="v1", extra=[(key, "x")])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7.0, "7"), (7.5, "7.5"), (1, "1"), (3.25, "3.25"), (0.1, "0.1"), (12.0, "12")],
)
def test_cfg_printed_like_a1111(value: float, expected: str) -> None:
    assert format_cfg(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a, b", '"a, b"'),
        ("k: v", '"k: v"'),
        ("two\nlines", '"two\\nlines"'),
        ('say "hi", ok', '"say \\"hi\\", ok"'),
        ("ünï, 日本", '"ünï, 日本"'),
        ('"starts quoted"', '"\\"starts quoted\\""'),
    ],
)
def test_quote_matches_a1111_json_quoting(value: str, expected: str) -> None:
    assert quote(value) == expected
    assert unquote(quote(value)) == value


def test_unquote_leaves_invalid_json_untouched() -> None:
    assert unquote('"broken \\x"') == '"broken \\x"'
    assert unquote('"') == '"'


# --- parsing real texts --------------------------------------------------------------------------


def test_parse_a1111_19_with_adetailer_hires_lora_and_ti() -> None:
    info = parse_infotext(A1111_19)
    assert info.prompt.startswith("masterpiece, best quality, 1girl, (smile:1.2)")
    assert info.negative_prompt == "(worst quality, low quality:1.4), easynegative"
    assert (info.steps, info.sampler, info.schedule, info.cfg_scale) == (28, "DPM++ 2M", "Karras", 7.0)
    assert (info.seed, info.width, info.height, info.clip_skip) == (3452453452, 512, 768, 2)
    assert (info.model_hash, info.model, info.version) == ("6ce0161689", "v1-5-pruned-emaonly", "v1.9.4")
    assert info.get("ADetailer prompt") == 'detailed face, "smile", blue eyes'
    assert info.get("Hires upscaler") == "R-ESRGAN 4x+ Anime6B"
    assert info.get("Hires upscale") == "2"
    assert info.lora_hashes == (("add_detail", "7c6bad76eb54"),)
    assert info.ti_hashes == (("easynegative", "c74b4e810b03"),)
    assert info.get("Size") == "512x768"
    assert info.keys[0] == "Steps" and info.keys[-1] == "Version"
    assert len(info.parameters) == 25


def test_parse_pre_19_sampler_form_splits_schedule() -> None:
    info = parse_infotext(A1111_OLD)
    assert (info.sampler, info.schedule) == ("DPM++ 2M", "Karras")
    assert info.get("Sampler") == "DPM++ 2M Karras"
    assert info.cfg_scale == 7.5
    assert (info.width, info.height) == (768, 512)
    assert info.negative_prompt == "cartoon, painting"


def test_parse_forge_keeps_foreign_schedule_and_modules() -> None:
    info = parse_infotext(FORGE)
    assert info.prompt == "cinematic photo of a lighthouse at dusk, <lora:flux_realism:0.8>"
    assert info.negative_prompt == ""
    assert (info.sampler, info.schedule) == ("Euler", "Simple")
    assert info.get("Distilled CFG Scale") == "3.5"
    assert [info.get(f"Module {i}") for i in (1, 2, 3)] == ["ae", "clip_l", "t5xxl_fp16"]
    assert info.lora_hashes == (("flux_realism", "0123456789ab"),)
    assert info.version == "f2.0.1v1.10.1-previous-313-g8a042934"


def test_parse_sdnext() -> None:
    info = parse_infotext(SDNEXT)
    assert info.get("App") == "SD.Next"
    assert info.get("Operations") == "txt2img"
    assert info.get("Pipeline") == "StableDiffusionXLPipeline"
    assert (info.sampler, info.schedule) == ("DPM++ 2M", None)
    assert (info.seed, info.cfg_scale, info.width) == (1620085323, 6.0, 1024)
    assert info.clip_skip is None


def test_parse_fooocus() -> None:
    info = parse_infotext(FOOOCUS)
    assert info.prompt.endswith("sharp focus, cinematic lighting")
    assert (
        info.get("Fooocus V2 Expansion")
        == "intricate, elegant, highly detailed, sharp focus, cinematic lighting"
    )
    assert info.get("Performance") == "Speed"
    assert info.get("ADM Guidance") == "(1.5, 0.8, 0.3)"
    assert info.get("Styles") == "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']"
    assert info.get("Raw negative prompt") == ""
    assert (info.sampler, info.schedule) == ("DPM++ 2M SDE", "Karras")
    assert info.cfg_scale == 4.0
    assert info.version == "Fooocus v2.5.5"
    assert (info.width, info.height, info.steps) == (1152, 896, 30)


def test_unknown_sampler_is_kept_raw() -> None:
    info = parse_infotext("x\nSteps: 8, Sampler: dpmpp_2m_sde_gpu, Seed: 1, Schedule type: align_your_steps")
    assert (info.sampler, info.schedule) == ("dpmpp_2m_sde_gpu", "align_your_steps")


def test_schedule_diffusers_lacks_is_kept_not_rejected() -> None:
    info = parse_infotext("x\nSteps: 8, Sampler: Euler a, Schedule type: Karras, Seed: 1")
    assert (info.sampler, info.schedule) == ("Euler a", "Karras")


def test_last_line_with_fewer_than_three_pairs_is_prompt() -> None:
    info = parse_infotext("a portrait\nstyle: baroque, mood: calm")
    assert info.prompt == "a portrait\nstyle: baroque, mood: calm"
    assert info.parameters == ()
    assert info.steps is None and info.sampler is None


def test_multiline_prompts_and_negative() -> None:
    text = "line one\nline two\nNegative prompt: bad\nworse\nSteps: 5, Seed: 9, Size: 64x64"
    info = parse_infotext(text)
    assert info.prompt == "line one\nline two"
    assert info.negative_prompt == "bad\nworse"
    assert (info.steps, info.seed, info.width) == (5, 9, 64)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "just a prompt",
        "Steps: twenty, Seed: x, Size: big",
        '\n\n"unterminated: ,,\n',
        "::::,,,,\n",
    ],
)
def test_malformed_text_degrades_without_raising(text: str) -> None:
    info = parse_infotext(text)
    assert info.steps is None and info.seed is None and info.width is None
    assert info.parameters == () or all(isinstance(v, str) for _, v in info.parameters)


def test_bad_numbers_become_none_but_raw_values_stay() -> None:
    info = parse_infotext("p\nSteps: twenty, Seed: x, Size: big, CFG scale: high")
    assert (info.steps, info.seed, info.width, info.cfg_scale) == (None, None, None, None)
    assert info.get("Steps") == "twenty"


# --- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "negative"),
    [
        ("a cat on a mat", "blurry"),
        ('a "quoted", comma: colon prompt', 'neg, with: "quotes"'),
        ("first line\nsecond, line: with colon\nthird", "neg one\nneg two"),
        ("ünïcödé 日本語 — émoji 🐱, (weighted:1.3)", ""),
        ("", "only negative"),
        ("Steps: 1, Seed: 2, Size: 3x4 inside the prompt", ""),
    ],
)
def test_round_trip_recovers_every_field(prompt: str, negative: str) -> None:
    model = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sdxl", name='my "model", v2: final')
    plan = make_plan(prompt=prompt, negative_prompt=negative, model=model, cfg_scale=5.5, clip_skip=3)
    for seed in plan.seeds:
        text = format_infotext(
            plan, seed=seed, model_hash="0123abcdef", version="v0.1.0", extra=[("Denoising strength", "0.5")]
        )
        info = parse_infotext(text)
        assert info.prompt == prompt
        assert info.negative_prompt == negative
        assert info.steps == plan.steps
        assert (info.sampler, info.schedule) == (plan.sampler, plan.schedule)
        assert info.cfg_scale == plan.cfg_scale
        assert info.seed == seed
        assert (info.width, info.height) == (plan.width, plan.height)
        assert (info.model_hash, info.model) == ("0123abcdef", model.name)
        assert info.clip_skip == 3
        assert info.version == "v0.1.0"
        assert info.get("Denoising strength") == "0.5"


def test_round_trip_batch_seeds() -> None:
    plan = dataclasses.replace(make_plan(), batch_size=3, seed=1000)
    seeds = [
        parse_infotext(format_infotext(plan, seed=s, model_hash=None, version="v")).seed for s in plan.seeds
    ]
    assert seeds == [1000, 1001, 1002]


def test_img2img_inpaint_and_control_units_are_written_as_a1111_does() -> None:
    from ml_lib.diffusion.plan import ControlUse, ImageRef, InitImage, IPAdapterUse

    img = ImageRef("/s/a.png", "ab" * 32, 64, 64)
    plan = make_plan(
        init=InitImage(
            img, 0.55, mask=ImageRef("/s/m.png", "cd" * 32, 64, 64), mask_blur=6, inpaint_full_res=True
        ),
        controls=(ControlUse("/models/ControlNet/control_v11p_sd15_canny", img, "canny", 0.9, 0.0, 0.8),),
        ip_adapters=(IPAdapterUse("/ip", "ip-adapter_sd15.safetensors", img, 0.6),),
    )
    info = parse_infotext(format_infotext(plan, seed=1, model_hash=None, version="v1"))
    assert info.get("Denoising strength") == "0.55" and info.get("Mask blur") == "6"
    assert info.get("Inpaint area") == "Only masked" and info.get("Masked area padding") == "32"
    assert info.get("ControlNet 0") == (
        "Module: canny, Model: control_v11p_sd15_canny, Weight: 0.9, Guidance Start: 0, Guidance End: 0.8"
    )
    assert info.get("IP-Adapter 0") == "Model: ip-adapter_sd15.safetensors, Weight: 0.6"


def test_control_unit_shows_its_catalog_name_else_the_file_stem() -> None:
    from ml_lib.diffusion.plan import ControlUse, ImageRef
    from ml_lib.diffusion.resolve.adapters import adapter_label as model_label

    assert model_label("/m/ControlNet/control_v11p_sd15_canny.safetensors") == "control_v11p_sd15_canny"
    assert model_label("/m/ControlNet/control_v11p_sd15_canny/") == "control_v11p_sd15_canny"
    assert model_label("lllyasviel/control_v11p_sd15_canny") == "control_v11p_sd15_canny"
    assert model_label("/m/diff.v2") == "diff.v2"  # a folder with a dot is no file suffix
    img = ImageRef("/s/a.png", "ab" * 32, 64, 64)
    unit = ControlUse("/pkg/assets/demo/controlnet", img, "none", 1.0, 0.0, 1.0, "demo-controlnet")
    info = parse_infotext(format_infotext(make_plan(controls=(unit,)), seed=1, model_hash=None, version="v"))
    assert "Model: demo-controlnet," in str(info.get("ControlNet 0"))
