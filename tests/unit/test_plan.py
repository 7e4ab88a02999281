"""GenerationPlan: exact JSON round trip, schema checks, A1111 seed rule."""

from __future__ import annotations

import json

import pytest

from ml_lib.diffusion.errors import PlanError
from ml_lib.diffusion.plan import SCHEMA_VERSION, Decision, GenerationPlan, ModelFormat, ModelRef, Source


def make_plan(**overrides: object) -> GenerationPlan:
    values: dict[str, object] = dict(
        prompt='a "quoted", multi\nline prompt: ünïcode',
        negative_prompt="blurry",
        model=ModelRef(
            "/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "x", "0123456789", "/c"
        ),
        width=512,
        height=768,
        steps=20,
        cfg_scale=7.5,
        sampler="DPM++ 2M",
        schedule="Karras",
        seed=1234,
        batch_size=3,
        clip_skip=2,
        device="cpu",
        dtype="float32",
        output_dir="/out",
        name_template="[seed]",
        decisions=(
            Decision("steps", 20, Source.PROFILE, "sd1 default"),
            Decision("seed", 1234, Source.RANDOM, "r"),
        ),
    )
    values.update(overrides)
    return GenerationPlan(**values)  # type: ignore[arg-type]


def test_json_round_trip_is_exact() -> None:
    plan = make_plan()
    again = GenerationPlan.from_json(plan.to_json())
    assert again == plan
    assert isinstance(again.model.format, ModelFormat)
    assert isinstance(again.decisions[0].source, Source)
    assert json.loads(plan.to_json())["schema_version"] == SCHEMA_VERSION


def test_round_trip_with_every_optional_part() -> None:
    from ml_lib.diffusion.plan import ControlUse, ImageRef, InitImage, IPAdapterUse, LoraUse

    img = ImageRef("/store/ab.png", "ab" * 32, 64, 48)
    plan = make_plan(
        loras=(LoraUse("style", "/l/style.safetensors", 0.8, 0.5, "0123456789ab"),),
        controls=(ControlUse("/cn/canny", img, "canny", 0.9, 0.1, 0.8),),
        ip_adapters=(IPAdapterUse("/ip", "ip-adapter_sd15.safetensors", img, 0.6),),
        init=InitImage(
            img, 0.55, "crop_and_resize", ImageRef("/store/m.png", "cd" * 32, 64, 48), 8, True, 16
        ),
    )
    again = GenerationPlan.from_json(plan.to_json())
    assert again == plan and isinstance(again.init, InitImage) and again.init.mask is not None
    assert GenerationPlan.from_json(make_plan().to_json()).init is None


def test_float_cfg_given_as_int_in_json_reads_as_float() -> None:
    data = make_plan(cfg_scale=7.0).to_dict()
    data["cfg_scale"] = 7
    assert GenerationPlan.from_dict(data).cfg_scale == 7.0


def test_seeds_follow_a1111_rule() -> None:
    assert make_plan(seed=10, batch_size=3).seeds == (10, 11, 12)


def test_decision_lookup() -> None:
    plan = make_plan()
    found = plan.decision("seed")
    assert found is not None and found.source is Source.RANDOM
    assert plan.decision("nothing") is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema_version=99), "schema version 99"),
        (lambda d: d.pop("steps"), r"Missing field GenerationPlan\.steps"),
        (lambda d: d.update(bogus=1), "Unknown field"),
        (lambda d: d.update(steps="20"), "must be int"),
        (lambda d: d.update(steps=True), "must be int"),
        (lambda d: d["model"].update(format="zip"), "Bad value 'zip'"),
        (lambda d: d["decisions"][0].update(value=[1]), "must be one of"),
        (lambda d: d.update(init={"image": {"path": "x"}}), r"Missing field .*sha256"),
        (lambda d: d.update(decisions="x"), "must be a list"),
    ],
)
def test_bad_plan_json_raises_plan_error(mutate, message: str) -> None:
    data = make_plan().to_dict()
    mutate(data)
    with pytest.raises(PlanError, match=message):
        GenerationPlan.from_dict(data)


def test_malformed_json_text() -> None:
    with pytest.raises(PlanError, match="malformed"):
        GenerationPlan.from_json("{not json")
