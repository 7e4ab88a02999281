"""The CPU thread policy: never more threads than free cores, one for a small model on a busy machine."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.plan import ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.planning.threads import SMALL_MODEL_PARAMS, choose_threads
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings

BIG, SMALL = 860_000_000, 8_000_000


@pytest.mark.parametrize(
    ("cores", "busy", "params", "threads"),
    [
        (2, 0.0, BIG, 2),  # idle: every core
        (2, 0.05, SMALL, 2),
        (2, 1.0, BIG, 1),  # a neighbour holds one core: one thread, never two spinning
        (2, 0.4, BIG, 2),  # 1.6 free rounds to 2
        (2, 0.6, BIG, 1),
        (2, 0.4, SMALL, 1),  # small model on a busy machine
        (8, 3.0, BIG, 5),
        (8, 7.9, BIG, 1),
        (4, 9.0, None, 1),  # oversubscribed: still one
    ],
)
def test_threads_follow_free_cores(cores: int, busy: float, params: int | None, threads: int) -> None:
    assert choose_threads(cores, busy, params=params).threads == threads


def test_user_count_wins_and_is_clamped() -> None:
    assert choose_threads(4, 3.5, params=BIG, requested=3).threads == 3
    assert choose_threads(4, 0.0, requested=16).threads == 4
    assert "set by the user" in choose_threads(4, 0.0, requested=2).reason


def test_small_model_threshold() -> None:
    assert choose_threads(2, 0.5, params=SMALL_MODEL_PARAMS - 1).threads == 1
    assert choose_threads(2, 0.3, params=SMALL_MODEL_PARAMS).threads == 2


def test_the_plan_records_the_threads_and_why(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "x")
    busy = DeviceInfo("cpu", "test CPU", cores=2, busy_cores=1.0)
    planner = Planner(Settings(home=tmp_path, threads=None), seed_source=lambda: 1)
    plan = planner.plan(GenerationRequest("a fox"), ResolvedRequest(model, unet_params=BIG), None, busy)
    decision = plan.decision("threads")
    assert plan.threads == 1 and decision is not None and decision.source is Source.DEVICE
    assert "1.0 of 2 cores free" in decision.reason
    fixed = Planner(Settings(home=tmp_path, threads=2), seed_source=lambda: 1)
    plan = fixed.plan(GenerationRequest("a fox"), ResolvedRequest(model, unet_params=BIG), None, busy)
    assert plan.threads == 2 and plan.decision("threads").source is Source.USER  # type: ignore[union-attr]
    gpu = DeviceInfo("cuda", "GPU", 8 << 30)
    assert fixed.plan(GenerationRequest("a fox"), ResolvedRequest(model), None, gpu).threads == 0
