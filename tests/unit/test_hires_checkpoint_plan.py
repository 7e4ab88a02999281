"""A1111's "Hires checkpoint" in the plan, the memory estimate and the infotext (pure: no model loads)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.errors import PlanError, RequestError
from ml_lib.diffusion.output.foreign.a1111 import read_infotext
from ml_lib.diffusion.output.infotext import parse_infotext
from ml_lib.diffusion.output.infotext_passes import parse_passes, pass_pairs
from ml_lib.diffusion.plan import (
    GenerationPlan,
    ImageRef,
    IPAdapterUse,
    ModelFormat,
    ModelRef,
    ResolvedRequest,
)
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.memory import Strategy, Workload, estimate
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.request import GenerationRequest, IPAdapterRequest
from ml_lib.diffusion.settings import Limits, Settings

CPU = DeviceInfo("cpu", "test CPU", ram_total=64 * 10**9, ram_available=64 * 10**9)
LIMITS = Limits(max_side=4096)
BASE = ModelRef("/m/base.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "base", "0123456789")
SECOND = ModelRef("/m/detail.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "detail", "abcdef0123")
SIZES = dict(unet_params=860_000_000, text_encoder_params=123_000_000, vae_params=83_000_000)

# A1111 1.10's parameters line for a hires image with a hires checkpoint (create_infotext's order)
A1111_TEXT = (
    "a castle\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 5, Size: 512x512, "
    "Model hash: 0123456789, Model: base, Denoising strength: 0.45, Hires checkpoint: detail [abcdef0123], "
    "Hires upscale: 2, Hires upscaler: Latent, Version: v1.10.1"
)


@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    return Planner(Settings(home=tmp_path, limits=LIMITS), seed_source=lambda: 1234)


def plan(planner: Planner, resolved: ResolvedRequest, **kw: object) -> GenerationPlan:
    request = GenerationRequest("a castle", width=512, height=512, **kw)  # type: ignore[arg-type]
    return planner.plan(request, resolved, None, CPU)


def test_the_plan_carries_the_checkpoint_and_why(planner: Planner) -> None:
    p = plan(planner, ResolvedRequest(BASE, hires_checkpoint=SECOND), hires_checkpoint="detail")
    assert p.hires is not None and p.hires.checkpoint == SECOND  # the option alone turns the hires fix on
    decision = next(d for d in p.decisions if d.field == "hires_checkpoint")
    assert decision.value == "detail"
    assert GenerationPlan.from_json(p.to_json()) == p
    without = plan(planner, ResolvedRequest(BASE), hires=True)
    assert without.hires is not None and "checkpoint" not in without.to_json()  # older plans unchanged
    validate_plan(GenerationPlan.from_json(p.to_json()), LIMITS)


def test_the_memory_estimate_holds_both_models(planner: Planner) -> None:
    params = 1_066_000_000
    one = plan(planner, ResolvedRequest(BASE, **SIZES), hires=True, memory="none")
    two = plan(
        planner,
        ResolvedRequest(BASE, **SIZES, hires_checkpoint=SECOND, hires_checkpoint_params=params),
        hires_checkpoint="detail",
        memory="none",
    )
    assert one.memory is not None and two.memory is not None
    # fp32 on the CPU: the second model's 4 bytes a parameter held beside the first for the run
    assert two.memory.estimated_peak_bytes - one.memory.estimated_peak_bytes == params * 4
    w = Workload(Family.SD1, 860_000_000, 123_000_000, 83_000_000, 512, 512, device="cuda", dtype="float16")
    offloaded = estimate(dataclasses.replace(w, second_model_params=params), Strategy.BALANCED)
    assert offloaded.peak_bytes == estimate(w, Strategy.BALANCED).peak_bytes  # one component at a time


def test_ip_adapters_with_a_hires_checkpoint_are_refused(planner: Planner) -> None:
    image = ImageRef("/in/ref.png", "0" * 64, 64, 64)
    resolved = ResolvedRequest(BASE, hires_checkpoint=SECOND)
    with pytest.raises(RequestError, match="IP-Adapters with a hires checkpoint are not supported"):
        plan(planner, resolved, hires_checkpoint="detail", ip_adapters=(IPAdapterRequest("/ip", image),))
    p = plan(planner, resolved, hires_checkpoint="detail")
    edited = dataclasses.replace(p, ip_adapters=(IPAdapterUse("/ip", "ip.safetensors", image),))
    with pytest.raises(PlanError, match=r"hires\.checkpoint"):
        validate_plan(edited, LIMITS)


def test_infotext_writes_a1111s_short_title(planner: Planner) -> None:
    p = plan(planner, ResolvedRequest(BASE, hires_checkpoint=SECOND), hires_checkpoint="detail")
    pairs = dict(pass_pairs(p))
    assert pairs["Hires checkpoint"] == "detail [abcdef0123]"
    assert "Hires checkpoint" not in dict(pass_pairs(plan(planner, ResolvedRequest(BASE), hires=True)))


def test_an_a1111_infotext_maps_the_hires_checkpoint_by_name() -> None:
    info = parse_infotext(A1111_TEXT)
    passes = parse_passes(info)
    assert (passes.hires_checkpoint, passes.hires_checkpoint_hash) == ("detail", "abcdef0123")
    foreign = read_infotext(info)
    assert dict(foreign.passes)["hires_checkpoint"] == "detail"
    assert "Hires checkpoint" not in {u.key for u in foreign.unmapped}


def test_use_same_checkpoint_means_none() -> None:
    info = parse_infotext(A1111_TEXT.replace("detail [abcdef0123]", "Use same checkpoint"))
    assert parse_passes(info).hires_checkpoint is None
    assert "hires_checkpoint" not in dict(read_infotext(info).passes)
