"""validate_plan: a plan from an untrusted file gets every check a command-line request gets, and more."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from ml_lib.diffusion.errors import PlanError
from ml_lib.diffusion.plan import (
    BlockScale,
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
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.settings import Limits

from .test_plan import make_plan

LIMITS = Limits()
IMAGE = ImageRef("/in/a.png", "ab" * 32, 512, 768)


def full_plan(**overrides: object) -> GenerationPlan:
    """A plan with every optional part, all valid."""
    values: dict[str, object] = dict(
        loras=(LoraUse("style", "/l/style.safetensors", 0.8, 1.0, "abc"),),
        embeddings=(EmbeddingUse("neg", "/e/neg.safetensors"),),
        controls=(ControlUse("/c/canny", IMAGE, "canny", 1.0, 0.0, 1.0, "canny"),),
        ip_adapters=(
            IPAdapterUse(
                "/ip",
                "ip-adapter_sd15.safetensors",
                IMAGE,
                0.6,
                "models",
                (BlockScale("up.block_0", (0.0, 1.0)),),
            ),
        ),
        init=InitImage(IMAGE, 0.6, "crop_and_resize", IMAGE, 4, True, 32),
    )
    values.update(overrides)
    return make_plan(**values)


def check(plan: GenerationPlan, field: str, *, allow_hub: bool = False) -> str:
    with pytest.raises(PlanError) as caught:
        validate_plan(plan, LIMITS, allow_hub=allow_hub)
    message = str(caught.value)
    assert message.startswith(f"Plan field {field}") and "\n" not in message, message
    return message


def test_valid_plans_pass() -> None:
    validate_plan(make_plan(), LIMITS)
    validate_plan(full_plan(), LIMITS)
    validate_plan(
        make_plan(device="cuda:1", dtype="float16", image_format="webp", cfg_scale=0, seed=0), LIMITS
    )
    validate_plan(GenerationPlan.from_json(full_plan().to_json()), LIMITS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 100_000, "height": 100_000}, "over the limit of 4096"),
        ({"width": 513}, "not a multiple of 8"),
        ({"width": 0}, "positive integer"),
        ({"width": 4096, "height": 4104}, "over the limit"),
        ({"width": True}, "positive integer"),
    ],
)
def test_sizes(overrides: dict[str, object], message: str) -> None:
    assert message in check(make_plan(**overrides), "width/height")


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("steps", [0, 501, 20.5, True, -1]),
        ("batch_size", [0, 100_000, 65, 1.0]),
        ("clip_skip", [0, 13, "2"]),
        ("seed", [-1, 2**32, 2**64, 1.5]),
        ("cfg_scale", [math.nan, math.inf, -1.0, 100.5, True, "7"]),
    ],
)
def test_numbers_in_range(field: str, values: list[object]) -> None:
    for value in values:
        check(make_plan(**{field: value}), field)


def test_limits_are_the_given_ones() -> None:
    tight = Limits(max_side=512, max_pixels=512 * 512, max_steps=10, max_batch=2, max_cfg=5.0)
    with pytest.raises(PlanError, match="steps"):
        validate_plan(make_plan(width=512, height=512, steps=20, batch_size=1, cfg_scale=1.0), tight)
    validate_plan(make_plan(width=512, height=512, steps=10, batch_size=2, cfg_scale=5.0), tight)


@pytest.mark.parametrize(
    ("sampler", "schedule"), [("Nope", "Karras"), ("DPM++ 2M", "Wobbly"), ("Euler", "Karras Karras")]
)
def test_sampler_and_schedule_known(sampler: str, schedule: str) -> None:
    assert "Unknown" in check(make_plan(sampler=sampler, schedule=schedule), "sampler/schedule")


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "tpu", "", "cpu; rm -rf /"])
def test_device(device: str) -> None:
    check(make_plan(device=device), "device")


@pytest.mark.parametrize("dtype", ["float64", "int8", "fp16", ""])
def test_dtype(dtype: str) -> None:
    check(make_plan(dtype=dtype), "dtype")


@pytest.mark.parametrize("fmt", ["gif", "exe", ""])
def test_image_format(fmt: str) -> None:
    assert "Unsupported image format" in check(make_plan(image_format=fmt), "image_format")


def test_name_template_tokens() -> None:
    assert "Unknown file name token" in check(make_plan(name_template="[evil]"), "name_template")


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin", ".CKPT"])
def test_model_reference_may_not_be_a_pickle(suffix: str) -> None:
    model = ModelRef(f"/m/model{suffix}", ModelFormat.SINGLE_FILE, "sd1")
    assert "pickle" in check(make_plan(model=model), "model.reference")
    folder = ModelRef(f"/m/unet/diffusion_pytorch_model{suffix}", ModelFormat.DIFFUSERS, "sd1")
    check(make_plan(model=folder), "model.reference")


def test_model_config_dir_and_family() -> None:
    bad_config = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", config_dir="/c/evil.pt")
    check(make_plan(model=bad_config), "model.config_dir")
    check(make_plan(model=ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "")), "model.family")
    check(make_plan(model=ModelRef("", ModelFormat.DIFFUSERS, "sd1")), "model.reference")


def test_hub_models_only_when_allowed() -> None:
    hub = make_plan(model=ModelRef("someone/model", ModelFormat.HUB, "sd1"))
    assert "Hugging Face Hub" in check(hub, "model.reference")
    validate_plan(hub, LIMITS, allow_hub=True)


@pytest.mark.parametrize(
    ("lora", "field"),
    [
        (LoraUse("x", "/l/x.safetensors", math.inf, 1.0), "loras[0].unet_weight"),
        (LoraUse("x", "/l/x.safetensors", 1.0, math.nan), "loras[0].te_weight"),
        (LoraUse("x", "/l/x.safetensors", 1e308, 1.0), "loras[0].unet_weight"),
        (LoraUse("x", "/l/x.safetensors", 1.0, -11.0), "loras[0].te_weight"),
        (LoraUse("x", "/l/x.pt"), "loras[0].path"),
    ],
)
def test_lora_weights_and_paths(lora: LoraUse, field: str) -> None:
    check(make_plan(loras=(lora,)), field)


def test_embedding_pickles_are_refused() -> None:
    check(make_plan(embeddings=(EmbeddingUse("e", "/e/e.pt"),)), "embeddings[0].path")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scale": 2.5}, "controls[0].scale"),
        ({"scale": math.nan}, "controls[0].scale"),
        ({"guidance_start": -0.1}, "controls[0].guidance_start"),
        ({"guidance_end": 1.5}, "controls[0].guidance_end"),
        ({"guidance_start": 0.8, "guidance_end": 0.2}, "controls[0].guidance_start"),
        ({"control_type": "xray"}, "controls[0].control_type"),
        ({"model": "/c/control.pth"}, "controls[0].model"),
    ],
)
def test_control_units(change: dict[str, object], field: str) -> None:
    unit = dataclasses.replace(full_plan().controls[0], **change)  # type: ignore[arg-type]
    check(full_plan(controls=(unit,)), field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scale": -0.5}, "ip_adapters[0].scale"),
        ({"scale": math.inf}, "ip_adapters[0].scale"),
        ({"weight_name": "ip-adapter_sd15.bin"}, "ip_adapters[0].weight_name"),
        ({"blocks": (BlockScale("up.block_0", (0.0, 3.0)),)}, "ip_adapters[0].blocks[0].scales"),
        ({"blocks": (BlockScale("sideways.block_0", (1.0,)),)}, "ip_adapters[0].blocks[0].block"),
    ],
)
def test_ip_adapters(change: dict[str, object], field: str) -> None:
    unit = dataclasses.replace(full_plan().ip_adapters[0], **change)  # type: ignore[arg-type]
    check(full_plan(ip_adapters=(unit,)), field)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strength": 1.5}, "init.strength"),
        ({"strength": math.nan}, "init.strength"),
        ({"resize_mode": "stretch"}, "init.resize_mode"),
        ({"mask_blur": -1}, "init.mask_blur"),
        ({"mask_blur": 10**9}, "init.mask_blur"),
        ({"inpaint_padding": -5}, "init.inpaint_padding"),
    ],
)
def test_init_image_options(change: dict[str, object], field: str) -> None:
    init = dataclasses.replace(full_plan().init, **change)  # type: ignore[arg-type]
    check(full_plan(init=init), field)


@pytest.mark.parametrize(
    ("image", "field"),
    [
        (ImageRef("/in/a.png", "ab" * 31, 512, 512), "init.image.sha256"),
        (ImageRef("/in/a.png", "AB" * 32, 512, 512), "init.image.sha256"),
        (ImageRef("/in/a.png", "zz" * 32, 512, 512), "init.image.sha256"),
        (ImageRef("/in/a.png", "ab" * 32, 0, 512), "init.image.width"),
        (ImageRef("/in/a.png", "ab" * 32, 100_000, 100_000), "init.image"),
        (ImageRef("", "ab" * 32, 512, 512), "init.image.path"),
    ],
)
def test_image_refs(image: ImageRef, field: str) -> None:
    check(full_plan(init=InitImage(image)), field)


def test_every_image_ref_is_checked() -> None:
    bad = ImageRef("/in/a.png", "0" * 63, 8, 8)
    init = dataclasses.replace(full_plan().init, mask=bad)  # type: ignore[arg-type]
    check(full_plan(init=init), "init.mask.sha256")
    control = dataclasses.replace(full_plan().controls[0], image=bad)
    check(full_plan(controls=(control,)), "controls[0].image.sha256")
    ip = dataclasses.replace(full_plan().ip_adapters[0], image=bad)
    check(full_plan(ip_adapters=(ip,)), "ip_adapters[0].image.sha256")


def test_degenerate_prompts_are_refused() -> None:
    assert "nests brackets" in check(make_plan(prompt="(" * 10_000 + "x"), "prompt")
    check(make_plan(negative_prompt="(bad:1000)"), "negative_prompt")


def test_a_plan_read_from_json_with_absurd_values_is_refused() -> None:
    data = json.loads(make_plan().to_json())
    data.update(width=100_000, height=100_000)
    check(GenerationPlan.from_dict(data), "width/height")
    data = json.loads(make_plan().to_json())
    data["batch_size"] = 100_000
    check(GenerationPlan.from_dict(data), "batch_size")
    text = make_plan().to_json().replace('"cfg_scale": 7.5', '"cfg_scale": NaN')
    check(GenerationPlan.from_json(text), "cfg_scale")


def test_not_a_plan() -> None:
    with pytest.raises(PlanError, match="Not a generation plan"):
        validate_plan({"width": 8}, LIMITS)  # type: ignore[arg-type]
