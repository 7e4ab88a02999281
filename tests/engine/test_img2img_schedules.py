"""img2img and inpaint on a tiny SD1 pipeline: the prompt schedule's calls and DPM2's noise levels as A1111's.

A1111 builds an img2img's prompt schedule over ``total_steps(p.steps)`` (``setup_conds``), all the steps
of the plan, and its CFG denoiser counts the calls of the img2img run from 0 (``initialize`` resets
``step``): call ``k`` of the run conditions on entry ``k`` of that schedule, not on entry ``k`` plus the
steps that strength skipped. DPM2's levels are A1111's discarded list (``test_discard_sigma.py``), cut where
our engine starts an img2img (diffusers' ``get_timesteps``: the last ``int(steps x strength)`` steps).
The ComfyUI graph of such a plan switches texts at the same calls of its KSampler's run (simulated by
:func:`.test_comfyui_schedule_sigmas.comfy_texts_per_call`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ml_lib.diffusion.engine.executor import execute
from ml_lib.diffusion.engine.pool import LoadedPipeline
from ml_lib.diffusion.imaging.store import InputStore
from ml_lib.diffusion.output.comfyui import comfy_graph
from ml_lib.diffusion.plan import GenerationPlan, ImageRef, InitImage
from ml_lib.diffusion.testing.tiny import tiny_sd1_components

from ..unit.test_comfyui_graph import by_type, check_against_schema
from .test_comfyui_schedule_sigmas import comfy_texts_per_call, rendered
from .test_discard_sigma import a1111_levels
from .test_prompt_schedule import by_hand, capture, make_plan


@pytest.fixture(scope="module")
def loaded() -> Iterator[LoadedPipeline]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    pipe = tiny_sd1_components()
    pipe.set_progress_bar_config(disable=True)
    yield LoadedPipeline(pipe, ("sd1", None, "float32", "cpu", "none"))
    torch.set_num_threads(before)


def stored(tmp_path: Path, image: Image.Image) -> ImageRef:
    ref = InputStore(tmp_path / "inputs").put(image)
    return ImageRef(str(tmp_path / "inputs" / ref.path), ref.sha256, 32, 32)


def with_init(plan: GenerationPlan, tmp_path: Path, strength: float, masked: bool) -> GenerationPlan:
    scene = Image.new("RGB", (32, 32), (30, 60, 200))
    ImageDraw.Draw(scene).ellipse((8, 8, 24, 24), fill=(230, 40, 40))
    mask = None
    if masked:
        region = Image.new("L", (32, 32), 0)
        ImageDraw.Draw(region).rectangle((8, 8, 23, 23), fill=255)
        mask = stored(tmp_path, region.convert("RGB"))
    init = InitImage(stored(tmp_path, scene), strength=strength, mask=mask, mask_blur=0)
    return dataclasses.replace(plan, init=init)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        # [cat:dog:2] over the plan's 8 steps: entries 0..2 "cat", then "dog". 5 of the 8 steps run (A1111's
        # int(8 x 0.5) + 1); its counter starts at 0 on the first of them, so they condition on entries 0-4.
        ("a [cat:dog:2]", ["a cat", "a cat", "a cat", "a dog"]),
        ("a [cat|dog]", ["a cat", "a cat", "a dog", "a cat"]),  # alternation from call 0, as in txt2img
    ],
)
def test_img2img_call_k_conditions_on_schedule_entry_k(
    loaded: LoadedPipeline, tmp_path: Path, masked: bool, prompt: str, expected: list[str]
) -> None:
    plan = with_init(make_plan(prompt, steps=8), tmp_path, 0.5, masked)
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, plan)
    assert len(seen["hidden"]) == int(8 * 0.5) + 1  # A1111's count
    for call, text in enumerate(expected):
        assert torch.equal(seen["hidden"][call], by_hand(loaded.pipe, text, "blurry")[0]), (call, text)


class Timesteps:
    """The timestep each UNet forward receives."""

    def __init__(self, unet: Any) -> None:
        self.unet = unet
        self.seen: list[float] = []

    def __enter__(self) -> Timesteps:
        self._handle = self.unet.register_forward_pre_hook(
            lambda _m, args, kw: self.seen.append(float(kw.get("timestep", args[1] if len(args) > 1 else 0))),
            with_kwargs=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


@pytest.mark.parametrize("sampler", ["DPM2", "DPM2 a"])
@pytest.mark.parametrize(("steps", "strength"), [(6, 1.0), (10, 0.6)])
def test_dpm2_calls_the_unet_at_a1111s_levels(
    loaded: LoadedPipeline, tmp_path: Path, sampler: str, steps: int, strength: float
) -> None:
    plan = make_plan("a cat", steps=steps, sampler=sampler, schedule=False)
    if strength < 1.0:
        plan = with_init(plan, tmp_path, strength, masked=False)
    with Timesteps(loaded.pipe.unet) as calls:
        execute(loaded, plan)
    scheduler = loaded.pipe.scheduler
    levels = a1111_levels("Uniform", steps)
    start = steps - min(steps, int(steps * min(strength, 0.999)) + 1)  # A1111's sample_img2img
    run = levels[start:]
    log_sigmas = scheduler.log_sigmas.cpu().numpy()
    # each step's first call is at its level (k-diffusion's DPM2: one call on the last step, to 0)
    assert len(calls.seen) == 2 * (len(run) - 1) - 1
    ours = np.array(calls.seen[0::2])
    theirs = np.array([scheduler._sigma_to_t(s, log_sigmas) for s in run[:-1]]).ravel()
    np.testing.assert_allclose(ours, theirs, atol=0.5)  # 1e-3 in sigma is under half a timestep here


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "Heun", "DPM2"])
def test_img2img_graph_and_engine_condition_each_call_on_the_same_text(
    loaded: LoadedPipeline, tmp_path: Path, sampler: str
) -> None:
    """[cat:dog:0.3] / [ugly:blurry:0.2] over the plan's 10 steps, 6 of them run (strength 0.6)."""
    plan = make_plan("a [cat:dog:0.3]", "[ugly:blurry:0.2]", steps=10, sampler=sampler)
    plan = with_init(plan, tmp_path, 0.6, masked=False)
    graph = comfy_graph(plan, seed=3)
    assert graph.reason is None
    check_against_schema(graph.nodes)
    (node,) = by_type(graph.nodes, "KSampler")
    comfy_positive = comfy_texts_per_call(graph.nodes, node, "positive")
    comfy_negative = comfy_texts_per_call(graph.nodes, node, "negative")
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, plan)
    assert plan.prompt_schedule is not None and len(seen["hidden"]) == len(comfy_positive)
    schedule = plan.prompt_schedule
    assert comfy_positive == [rendered(schedule.parts[0].text_at(c)) for c in range(len(comfy_positive))]
    assert comfy_negative == [rendered(schedule.negative.text_at(c)) for c in range(len(comfy_positive))]
    assert len(set(comfy_positive)) == len(set(comfy_negative)) == 2  # both switch during the run
    for call, hidden in enumerate(seen["hidden"]):
        positive, negative = schedule.parts[0].text_at(call), schedule.negative.text_at(call)
        assert torch.equal(hidden, by_hand(loaded.pipe, positive, negative)[0]), call
