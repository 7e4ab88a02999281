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
        (lambda d: d.pop("steps"), "Missing field plan.steps"),
        (lambda d: d.update(bogus=1), "Unknown field"),
        (lambda d: d.update(steps="20"), "must be int"),
        (lambda d: d.update(steps=True), "must be int"),
        (lambda d: d["model"].update(format="zip"), "Bad value 'zip'"),
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
