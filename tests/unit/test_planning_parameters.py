"""Size buckets from the prompt's aspect, presets, distilled retuning, user overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import SpeedHint
from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.plan import LoraUse, ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.parameters import SDXL_BUCKETS, Bucket, bucket_for, size_buckets
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings
from ml_lib.diffusion.testing.records import lora_record

CPU = DeviceInfo("cpu", "test CPU")


def model(family: str = "sdxl", name: str = "x") -> ModelRef:
    return ModelRef(f"/m/{name}.safetensors", ModelFormat.SINGLE_FILE, family, "epsilon", name)


@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    return Planner(Settings(home=tmp_path, limits=Limits(max_side=2048)), seed_source=lambda: 7)


def plan_for(planner: Planner, prompt: str, m: ModelRef | None = None, **kw):  # type: ignore[no-untyped-def]
    return planner.plan(
        GenerationRequest(prompt, **kw), ResolvedRequest(m or model()), analyze_prompt(prompt), CPU
    )


def test_sdxl_buckets_are_the_standard_set() -> None:
    assert size_buckets(Family.SDXL, 1024) == SDXL_BUCKETS
    assert Bucket(1344, 768) in SDXL_BUCKETS and len(SDXL_BUCKETS) == 9


@pytest.mark.parametrize("side", [512, 768, 1024])
def test_buckets_are_multiples_of_64_near_the_budget(side: int) -> None:
    for b in size_buckets(Family.SD1, side):
        assert b.width % 64 == 0 and b.height % 64 == 0
        assert 0.8 < b.width * b.height / side**2 < 1.2


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (1.0, (1024, 1024)),
        (16 / 9, (1344, 768)),
        (9 / 16, (768, 1344)),
        (2.4, (1536, 640)),
        (0.75, (896, 1152)),
    ],
)
def test_bucket_for_ratio(ratio: float, expected: tuple[int, int]) -> None:
    b = bucket_for(ratio, SDXL_BUCKETS)
    assert (b.width, b.height) == expected


@pytest.mark.parametrize(
    ("prompt", "family", "size"),
    [
        ("phone wallpaper of a mountain lake", "sdxl", (768, 1344)),
        ("a cinematic wide shot of a desert highway, 16:9", "sdxl", (1344, 768)),
        ("phone wallpaper of a mountain lake", "sd1", (384, 704)),
        ("a minimalist logo of a fox", "sd1", (512, 512)),
    ],
)
def test_aspect_from_the_prompt_picks_the_bucket(planner: Planner, prompt: str, family: str, size) -> None:
    plan = plan_for(planner, prompt, model(family))
    assert (plan.width, plan.height) == size
    width = plan.decision("width")
    assert width is not None and width.reason
    if size[0] != size[1]:
        assert width.source is Source.ANALYSIS


def test_user_size_wins_over_the_aspect(planner: Planner) -> None:
    plan = plan_for(planner, "phone wallpaper of a lake", width=1024, height=1024)
    assert (plan.width, plan.height) == (1024, 1024)
    assert plan.decision("width").source is Source.USER  # type: ignore[union-attr]


@pytest.mark.parametrize(("preset", "steps"), [("speed", 18), ("balanced", 30), ("quality", 48)])
def test_presets_scale_steps(planner: Planner, preset: str, steps: int) -> None:
    plan = plan_for(planner, "a fox", preset=preset)
    assert plan.steps == steps
    assert preset in plan.decision("steps").reason  # type: ignore[union-attr]


def test_unknown_preset_is_refused(planner: Planner) -> None:
    with pytest.raises(RequestError, match="preset"):
        plan_for(planner, "a fox", preset="fastest")


@pytest.mark.parametrize(
    ("name", "steps", "cfg", "sampler"),
    [
        ("sdxl_lightning_4step", 4, 1.0, "Euler"),
        ("dreamshaper-xl-turbo", 4, 1.0, "Euler a"),
        ("juggernaut_lcm", 4, 1.5, "LCM"),
    ],
)
def test_distilled_checkpoint_retunes(
    planner: Planner, name: str, steps: int, cfg: float, sampler: str
) -> None:
    plan = plan_for(planner, "a fox", model("sdxl", name), preset="quality")
    assert (plan.steps, plan.cfg_scale, plan.sampler) == (steps, cfg, sampler)
    for field in ("steps", "cfg_scale", "sampler"):
        d = plan.decision(field)
        assert d is not None and d.source is Source.CATALOG and name in d.reason


def test_speed_lora_retunes_from_its_hint(planner: Planner) -> None:
    hint = SpeedHint("Hyper", 8, 1.0, "DDIM", None, "ss_output_name 'Hyper-SDXL-8steps'")
    rec = lora_record("hyper_8", speed=hint)
    use = LoraUse("hyper_8", rec.path, 1.0, 1.0)
    resolved = ResolvedRequest(model(), loras=(use,), candidates=(rec,))
    plan = planner.plan(GenerationRequest("a fox"), resolved, None, CPU)
    assert (plan.steps, plan.cfg_scale, plan.sampler) == (8, 1.0, "DDIM")
    assert "speed LoRA 'hyper_8'" in plan.decision("steps").reason  # type: ignore[union-attr]


def test_user_values_win_over_distilled(planner: Planner) -> None:
    plan = plan_for(planner, "a fox", model("sdxl", "sdxl_turbo"), steps=2, cfg_scale=0.0, sampler="Euler")
    assert (plan.steps, plan.cfg_scale, plan.sampler) == (2, 0.0, "Euler")
    for field in ("steps", "cfg_scale", "sampler"):
        assert plan.decision(field).source is Source.USER  # type: ignore[union-attr]
    assert plan.decision("schedule").source is not Source.USER  # type: ignore[union-attr]


def test_every_automatic_field_has_a_sourced_decision(planner: Planner) -> None:
    plan = plan_for(planner, "portrait of an old fisherman, 85mm")
    fields = {d.field: d for d in plan.decisions}
    for name in ("width", "height", "steps", "cfg_scale", "sampler", "schedule", "seed", "clip_skip"):
        assert name in fields and fields[name].reason, name
        assert fields[name].source is not Source.USER
