"""A plan read from an untrusted file: absurd nesting is a PlanError, never a RecursionError."""

from __future__ import annotations

import json
import time

import pytest

from ml_lib.diffusion.errors import PlanError
from ml_lib.diffusion.plan import GenerationPlan

from .test_plan import make_plan


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_100k_deep_json_is_a_plan_error(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    text = opener * 100_000 + "1" + closer * 100_000
    start = time.perf_counter()
    with pytest.raises(PlanError, match="nested deeper than"):
        GenerationPlan.from_json(text)
    assert time.perf_counter() - start < 2.0


def test_deep_nesting_inside_a_field_is_a_plan_error() -> None:
    data = json.loads(make_plan().to_json())
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    data["decisions"][0]["value"] = deep
    with pytest.raises(PlanError, match="nested deeper than"):
        GenerationPlan.from_dict(data)


def test_brackets_inside_strings_do_not_count() -> None:
    plan = make_plan(prompt="[" * 5000 + '"\\' + "{" * 5000)
    assert GenerationPlan.from_json(plan.to_json()) == plan


def test_a_plausible_plan_is_far_from_the_limit() -> None:
    plan = make_plan()
    assert GenerationPlan.from_json(plan.to_json()) == plan
