"""The first planner: user values win, family profiles fill the rest, every choice is a Decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_lib.diffusion.errors import RequestError, UnknownSamplerError
from ml_lib.diffusion.plan import ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import DEFAULT_NAME_TEMPLATE, Planner
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings

CPU = DeviceInfo("cpu", "test CPU")


def model(family: str = "sd1", prediction: str = "epsilon") -> ModelRef:
    return ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, family, prediction, "x")


@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    return Planner(Settings(home=tmp_path, limits=Limits(max_side=2048)), seed_source=lambda: 777)


@pytest.mark.parametrize(
    ("family", "prediction", "size", "steps", "cfg"),
    [
        ("sd1", "epsilon", (512, 512), 25, 7.0),
        ("sd2", "epsilon", (512, 512), 25, 7.0),
        ("sd2", "v_prediction", (768, 768), 25, 7.0),
        ("sdxl", "epsilon", (1024, 1024), 30, 6.0),
    ],
)
def test_family_defaults(
    planner: Planner, family: str, prediction: str, size, steps: int, cfg: float
) -> None:
    plan = planner.plan(GenerationRequest("a fox"), ResolvedRequest(model(family, prediction)), None, CPU)
    assert (plan.width, plan.height, plan.steps, plan.cfg_scale) == (*size, steps, cfg)
    assert (plan.sampler, plan.schedule) == ("DPM++ 2M", "Karras")
    assert plan.seed == 777 and plan.batch_size == 1 and plan.clip_skip == 1
    assert plan.dtype == "float32" and plan.device == "cpu"
    assert plan.name_template == DEFAULT_NAME_TEMPLATE
    width = plan.decision("width")
    assert width is not None and width.source is Source.PROFILE and family in width.reason
    seed = plan.decision("seed")
    assert seed is not None and seed.source is Source.RANDOM


def test_every_field_has_a_decision(planner: Planner) -> None:
    plan = planner.plan(GenerationRequest("a fox"), ResolvedRequest(model()), None, CPU)
    fields = {d.field for d in plan.decisions}
    expected = {
        "width",
        "height",
        "steps",
        "cfg_scale",
        "sampler",
        "schedule",
        "seed",
        "batch_size",
        "clip_skip",
    }
    assert expected | {"device", "dtype", "output_dir", "name_template"} <= fields


def test_user_values_win_and_are_recorded(planner: Planner, tmp_path: Path) -> None:
    request = GenerationRequest(
        "a fox", width=640, height=448, steps=12, cfg_scale=4.5, sampler="Euler a", seed=5, batch_size=2,
        clip_skip=2, output_dir=str(tmp_path), name_template="[seed]",
    )  # fmt: skip
    plan = planner.plan(request, ResolvedRequest(model()), None, CPU)
    assert (plan.width, plan.height, plan.steps, plan.cfg_scale, plan.seed, plan.batch_size) == (
        640,
        448,
        12,
        4.5,
        5,
        2,
    )
    assert (plan.sampler, plan.schedule) == ("Euler a", "Uniform")
    for name in ("width", "steps", "cfg_scale", "sampler", "seed", "batch_size", "clip_skip", "output_dir"):
        decision = plan.decision(name)
        assert decision is not None and decision.source is Source.USER, name
    schedule = plan.decision("schedule")
    assert schedule is not None and schedule.source is Source.PROFILE and "Euler a" in schedule.reason


def test_legacy_sampler_name_counts_as_user_schedule(planner: Planner) -> None:
    plan = planner.plan(
        GenerationRequest("x", sampler="DPM++ SDE Karras"), ResolvedRequest(model()), None, CPU
    )
    assert (plan.sampler, plan.schedule) == ("DPM++ SDE", "Karras")
    schedule = plan.decision("schedule")
    assert schedule is not None and schedule.source is Source.USER


def test_seed_minus_one_means_random(planner: Planner) -> None:
    assert planner.plan(GenerationRequest("x", seed=-1), ResolvedRequest(model()), None, CPU).seed == 777


def test_cuda_gets_fp16(planner: Planner) -> None:
    plan = planner.plan(
        GenerationRequest("x"), ResolvedRequest(model("sdxl")), None, DeviceInfo("cuda", "GPU", 8 << 30)
    )
    assert plan.dtype == "float16"
    dtype = plan.decision("dtype")
    assert dtype is not None and "fp32" in dtype.reason


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 513}, "not a multiple of 8; use 512 or 520"),
        ({"width": 4096}, "over the limit of 2048"),
        ({"height": 0}, "positive"),
        ({"steps": 0}, "steps must be between 1"),
        ({"steps": 100000}, "steps must be between 1"),
        ({"cfg_scale": -1.0}, "CFG scale"),
        ({"batch_size": 0}, "batch size"),
        ({"clip_skip": 13}, "clip skip"),
        ({"seed": 2**40}, "seed must be"),
        ({"steps": 2.5}, "steps must be"),
    ],
)
def test_bad_requests_are_rejected(planner: Planner, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        planner.plan(GenerationRequest("x", **overrides), ResolvedRequest(model()), None, CPU)  # type: ignore[arg-type]


def test_profile_size_over_limit_is_rejected(tmp_path: Path) -> None:
    small = Planner(Settings(home=tmp_path, limits=Limits(max_side=768)))
    with pytest.raises(RequestError, match="over the limit"):
        small.plan(GenerationRequest("x"), ResolvedRequest(model("sdxl")), None, CPU)


def test_unknown_sampler(planner: Planner) -> None:
    with pytest.raises(UnknownSamplerError):
        planner.plan(GenerationRequest("x", sampler="nope"), ResolvedRequest(model()), None, CPU)


def test_unknown_name_token_is_rejected_before_work(planner: Planner) -> None:
    with pytest.raises(RequestError, match=r"Unknown file name token.*\[bogus\]"):
        planner.plan(
            GenerationRequest("x", name_template="[seed]-[bogus]"), ResolvedRequest(model()), None, CPU
        )


def test_prompt_lora_tags_become_requests() -> None:
    from ml_lib.diffusion.prompt.syntax import parse_prompt
    from ml_lib.diffusion.request import LoraRequest
    from ml_lib.diffusion.resolve.loras import lora_requests

    merged = lora_requests(
        parse_prompt("a fox <lora:detail:0.5> <lora:Style:0.4:0.9> <lyco:grain:1> <hypernet:old:1>"),
        (LoraRequest("style", 0.7),),
    )
    assert merged == (
        LoraRequest("style", 0.7),
        LoraRequest("detail", 0.5, 0.5),
        LoraRequest("grain", 1.0, 1.0),
    )
    with pytest.raises(RequestError, match="Cannot read the weights"):
        lora_requests(parse_prompt("<lora:x:abc>"), ())


def test_analyzer_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml_lib.diffusion.errors import ConfigError
    from ml_lib.diffusion.facade import ImageGenerator

    monkeypatch.setenv("ML_DIFFUSION_ANALYZER", "Rules")
    assert Settings.from_env().analyzer == "rules"
    monkeypatch.setenv("ML_DIFFUSION_ANALYZER", " ")
    assert Settings.from_env().analyzer == "use"  # the default: rules + USE where they know no word
    monkeypatch.delenv("ML_DIFFUSION_ANALYZER")
    assert Settings.from_env().analyzer == Settings().analyzer == "use"
    gen = ImageGenerator(Settings(home=tmp_path))
    assert gen.analyze("a portrait photo of an old man").content_type == "portrait"
    with pytest.raises(ConfigError, match="rules, semantic, use or ollama"):
        ImageGenerator(Settings(home=tmp_path, analyzer="magic")).analyze("x")
