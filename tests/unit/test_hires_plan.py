"""Hires fix, refiner, variation seeds and batch count: A1111's sizes and step rules, plan decisions,
plan JSON and validation, and the infotext keys written and read back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ml_lib.diffusion.errors import PlanError, RequestError
from ml_lib.diffusion.output.infotext import format_infotext, parse_infotext
from ml_lib.diffusion.output.infotext_passes import parse_passes
from ml_lib.diffusion.plan import (
    Decision,
    GenerationPlan,
    HiresPlan,
    ModelFormat,
    ModelRef,
    ResolvedRequest,
    Source,
)
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.hires import hires_schedule, hires_target
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings

CPU = DeviceInfo("cpu", "test CPU")


def model(family: str = "sd1", name: str = "x", sha: str | None = None) -> ModelRef:
    return ModelRef(f"/m/{name}.safetensors", ModelFormat.SINGLE_FILE, family, "epsilon", name, sha)


@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    draws = iter(range(1000, 2000))
    return Planner(Settings(home=tmp_path, limits=Limits(max_side=4096)), seed_source=lambda: next(draws))


def plan(planner: Planner, resolved: ResolvedRequest | None = None, **kw: object) -> GenerationPlan:
    request = GenerationRequest("a lighthouse", **kw)  # type: ignore[arg-type]
    return planner.plan(request, resolved or ResolvedRequest(model()), None, CPU)


@pytest.mark.parametrize(
    ("size", "hires", "upscale", "final"),
    [
        ((512, 768), HiresPlan(scale=1.5), (768, 1152), (768, 1152)),
        ((500, 500), HiresPlan(scale=1.35), (675, 675), (672, 672)),  # int(), then whole latent pixels
        ((512, 512), HiresPlan(resize_width=1024), (1024, 1024), (1024, 1024)),
        ((512, 768), HiresPlan(resize_height=1024), (682, 1024), (680, 1024)),
        # both sides: cover 1024x1024 at the first pass's aspect, crop the overhang centred
        ((512, 768), HiresPlan(resize_width=1024, resize_height=1024), (1024, 1536), (1024, 1024)),
        ((448, 640), HiresPlan(resize_width=1024, resize_height=1536), (1075, 1536), (1024, 1536)),
    ],
)
def test_target_size_follows_a1111(
    size: tuple[int, int], hires: HiresPlan, upscale: tuple[int, int], final: tuple[int, int]
) -> None:
    target = hires_target(*size, hires)
    assert (target.upscale_width, target.upscale_height) == upscale
    assert (target.width, target.height) == final


def test_truncation_matches_a1111_by_hand() -> None:
    target = hires_target(512, 768, HiresPlan(resize_width=1024, resize_height=1024))
    # upscale_to_y = 1024 * 768 // 512 = 1536; truncate_y = (1536 - 1024) // 8 = 64 latent pixels
    assert (target.truncate_x, target.truncate_y) == (0, 64)
    assert target.latent_size == (1536 // 8 - 64, 1024 // 8)


@pytest.mark.parametrize("k", [1, 2, 5, 10, 20, 37])
@pytest.mark.parametrize("denoise", [0.05, 0.3, 0.33, 0.5, 0.7, 0.75, 0.999, 1.0])
def test_diffusers_runs_exactly_the_hires_steps(k: int, denoise: float) -> None:
    total, strength = hires_schedule(25, HiresPlan(steps=k, denoise=denoise))
    assert total == int(k / min(denoise, 0.999))  # A1111's setup_img2img_steps with steps given
    assert 0 < strength <= 1
    assert min(int(total * strength), total) == k  # diffusers' get_timesteps runs this many


def test_hires_steps_zero_means_the_first_pass_steps() -> None:
    assert hires_schedule(12, HiresPlan(steps=0, denoise=0.5)) == (24, 12.5 / 24)


def test_hires_request_plans_the_second_pass(planner: Planner) -> None:
    p = plan(planner, width=512, height=512, hires_scale=2.0, hires_steps=10, hires_denoise=0.45,
             hires_upscaler="latent (bicubic)", hires_sampler="Euler a", hires_prompt="sharp")  # fmt: skip
    assert (p.width, p.height) == (512, 512)
    assert p.hires == HiresPlan(
        upscaler="Latent (bicubic)", scale=2.0, steps=10, denoise=0.45, sampler="Euler a",
        schedule="Uniform", prompt="sharp",  # diffusers has no Karras for Euler a: its own default
    )  # fmt: skip
    decision = p.decision("hires")
    assert decision is not None and decision.source is Source.USER and decision.value == "1024x1024"
    assert GenerationPlan.from_json(p.to_json()) == p
    same = plan(planner, width=512, height=512, hires_sampler="DPM++ SDE")  # keeps the first pass's Karras
    assert same.schedule == "Karras" and same.hires is not None and same.hires.schedule == ""


def test_planner_turns_hires_on_far_above_native_size(planner: Planner) -> None:
    p = plan(planner, width=1024, height=1536)
    # A1111's old first-pass rule: native area, each side rounded up to 64; hires resize to the request
    assert (p.width, p.height) == (448, 640)
    assert p.hires is not None and (p.hires.resize_width, p.hires.resize_height) == (1024, 1536)
    assert hires_target(p.width, p.height, p.hires).width == 1024
    decision = p.decision("hires")
    assert decision is not None and decision.source is Source.PROFILE and "far above" in decision.reason
    width = p.decision("width")
    assert width is not None and width.source is Source.PROFILE and "first pass" in width.reason


def test_auto_hires_threshold_is_225_times_the_native_area(planner: Planner) -> None:
    assert plan(planner, width=768, height=768).hires is not None  # exactly 2.25x of 512x512
    assert plan(planner, width=768, height=704).hires is None


@pytest.mark.parametrize("kw", [dict(hires=False), dict(auto=False)])
def test_planner_leaves_hires_off_when_told(planner: Planner, kw: dict[str, object]) -> None:
    p = plan(planner, width=1024, height=1024, **kw)
    assert p.hires is None and (p.width, p.height) == (1024, 1024)


def test_no_auto_hires_on_sdxl_native_size_or_the_demo(planner: Planner) -> None:
    assert plan(planner, ResolvedRequest(model("sdxl")), width=1024, height=1024).hires is None
    assert plan(planner, ResolvedRequest(model("demo")), width=256, height=256).hires is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(hires_denoise=0.0), "denoising strength"),
        (dict(hires_scale=9.0), "hires scale"),
        (dict(hires_upscaler="4x-Ultra"), None),  # resolve finds model files; the planner refuses names
        (dict(hires=True, refiner_switch=0.5), "--refiner"),
    ],
)
def test_bad_hires_values_are_one_line_errors(
    planner: Planner, kw: dict[str, object], message: str | None
) -> None:
    with pytest.raises(RequestError, match=message or "Unknown hires upscaler"):
        plan(planner, width=256, height=256, **kw)


def test_refiner_pairs_with_sdxl_only(planner: Planner) -> None:
    refiner = model("sdxl-refiner", "refiner", "7440042bbd")
    picked = Decision("refiner", "refiner", Source.CATALOG, "--refiner auto: the catalogued SDXL refiner")
    resolved = ResolvedRequest(model("sdxl"), refiner=refiner, refiner_decision=picked)
    p = plan(planner, resolved, width=1024, height=1024)
    assert p.refiner is not None and (p.refiner.model, p.refiner.switch_at) == (refiner, 0.8)
    assert p.decision("refiner") == picked
    assert p.decision("refiner_switch").source is Source.PROFILE  # type: ignore[union-attr]
    with pytest.raises(RequestError, match="SDXL base"):
        plan(planner, ResolvedRequest(model("sd1"), refiner=refiner))
    with pytest.raises(RequestError, match="between 0 and 1"):
        plan(planner, resolved, refiner_switch=1.0)
    both = plan(planner, resolved, hires=True)  # the refiner takes over inside the hires pass
    assert both.hires is not None and both.refiner is not None


def test_variation_and_batch_count_seeds(planner: Planner) -> None:
    plain = plan(planner, seed=100, batch_size=2, batch_count=3)
    assert plain.seeds == (100, 101, 102, 103, 104, 105) and plain.subseeds == ()
    varied = plan(planner, seed=100, batch_size=2, batch_count=2, variation_strength=0.25)
    # A1111: with a strength every image keeps the seed and the (drawn) variation seed advances
    assert varied.seeds == (100,) * 4
    assert varied.variation is not None and varied.subseeds == tuple(
        varied.variation.seed + i for i in range(4)
    )
    assert varied.decision("variation_seed").source is Source.RANDOM  # type: ignore[union-attr]
    resized = plan(planner, seed=5, seed_resize_from=(256, 384))
    assert resized.variation is not None and resized.seeds == (5,)
    assert (resized.variation.resize_width, resized.variation.resize_height, resized.variation.strength) == (
        256,
        384,
        0,
    )
    assert plan(planner, seed_resize_from=(-1, -1)).variation is None
    with pytest.raises(RequestError, match="needs --variation-strength"):
        plan(planner, variation_seed=3)
    with pytest.raises(RequestError, match="batch count"):
        plan(planner, batch_count=0)


def test_old_plans_do_not_change(planner: Planner) -> None:
    p = plan(planner, seed=1)
    data = json.loads(p.to_json())
    assert not {"hires", "refiner", "variation", "batch_count"} & set(data)


def _sample_plan(planner: Planner) -> GenerationPlan:
    return plan(
        planner, seed=9, width=512, height=512, steps=20, hires_resize=(1024, 0), hires_steps=8,
        hires_denoise=0.55, hires_upscaler="Lanczos", hires_negative_prompt="blurry",
        variation_seed=77, variation_strength=0.1, seed_resize_from=(448, 448), batch_size=2,
    )  # fmt: skip


def test_infotext_writes_a1111_keys_and_reads_them_back(planner: Planner) -> None:
    p = _sample_plan(planner)
    text = format_infotext(p, seed=9, model_hash="abcdef0123", version="v1", index=1)
    line = text.splitlines()[-1]
    for piece in (
        "Seed: 9", "Size: 512x512", "Variation seed: 78", "Variation seed strength: 0.1",
        "Seed resize from: 448x448", "Denoising strength: 0.55", "Hires negative prompt: blurry",
        "Hires resize: 1024x0", "Hires steps: 8", "Hires upscaler: Lanczos",
    ):  # fmt: skip
        assert piece in line
    assert "Hires upscale:" not in line and "Hires prompt:" not in line
    passes = parse_passes(parse_infotext(text))
    fields = passes.request_fields()
    assert fields == {
        "variation_seed": 78, "variation_strength": 0.1, "seed_resize_from": (448, 448), "hires": True,
        "hires_resize": (1024, 0), "hires_steps": 8, "hires_upscaler": "Lanczos",
        "hires_negative_prompt": "blurry", "hires_denoise": 0.55,
    }  # fmt: skip
    # The same request planned again gives the same second pass.
    again = plan(
        planner, seed=9, width=512, height=512, steps=20, **{**fields, "variation_seed": 77}, batch_size=2
    )
    assert again.hires == p.hires and again.variation == p.variation


def test_refiner_infotext_round_trip(planner: Planner) -> None:
    refiner = model("sdxl-refiner", "sd_xl_refiner_1.0", "7440042bbd")
    p = plan(
        planner, ResolvedRequest(model("sdxl"), refiner=refiner), width=1024, height=1024, refiner_switch=0.7
    )
    text = format_infotext(p, seed=p.seed, model_hash=None, version="v1")
    assert "Refiner: sd_xl_refiner_1.0 [7440042bbd], Refiner switch at: 0.7," in text
    passes = parse_passes(parse_infotext(text))
    assert (passes.refiner, passes.refiner_hash, passes.refiner_switch) == (
        "sd_xl_refiner_1.0",
        "7440042bbd",
        0.7,
    )
    assert passes.request_fields() == {"refiner": "sd_xl_refiner_1.0", "refiner_switch": 0.7}


def test_a1111_written_infotext_parses() -> None:
    text = (
        "a cat\nNegative prompt: ugly\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, "
        "Seed: 1, Size: 512x512, Model hash: 6ce0161689, Model: v1-5, Variation seed: 2, "
        "Variation seed strength: 0.3, Denoising strength: 0.7, Hires upscale: 2, Hires upscaler: Latent, "
        "Version: v1.10.1"
    )
    passes = parse_passes(parse_infotext(text))
    assert passes.request_fields() == {
        "variation_seed": 2, "variation_strength": 0.3, "hires": True, "hires_scale": 2.0,
        "hires_upscaler": "Latent", "hires_denoise": 0.7,
    }  # fmt: skip


def test_validation_refuses_bad_second_passes(planner: Planner) -> None:
    limits = Limits(max_side=4096)
    good = _sample_plan(planner)
    validate_plan(good, limits)
    assert good.hires is not None and good.variation is not None
    bad = [
        (dataclasses.replace(good, batch_count=0), "batch_count"),
        (dataclasses.replace(good, hires=dataclasses.replace(good.hires, denoise=0.0)), "hires"),
        (
            dataclasses.replace(good, hires=dataclasses.replace(good.hires, upscaler="Magic")),
            "hires.upscaler",
        ),
        (
            dataclasses.replace(good, hires=dataclasses.replace(good.hires, upscaler_path="/x/4x.pth")),
            "pickle",
        ),
        (dataclasses.replace(good, variation=dataclasses.replace(good.variation, strength=2.0)), "strength"),
    ]
    for changed, message in bad:
        with pytest.raises(PlanError, match=message):
            validate_plan(changed, limits)


def test_memory_is_estimated_for_the_second_pass(planner: Planner) -> None:
    resolved = ResolvedRequest(
        model(), unet_params=860_000_000, text_encoder_params=123_000_000, vae_params=83_000_000
    )
    one = plan(planner, resolved, width=512, height=512)
    two = plan(planner, resolved, width=512, height=512, hires_scale=2.0)
    assert one.memory is not None and two.memory is not None
    assert two.memory.estimated_peak_bytes > one.memory.estimated_peak_bytes
    assert "1024x1024" in two.decision("memory").reason  # type: ignore[union-attr]
