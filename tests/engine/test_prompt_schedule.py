"""Scheduled prompts on tiny pipelines: what the UNet sees at each call, against tensors computed by hand.

The reference embeddings come from diffusers' own ``encode_prompt`` (equal to ours for short unweighted
prompts, see ``test_conditioning.py``); the expected text of each call is written out from A1111's rules
(``reconstruct_cond_batch``: the first entry whose ``end_at_step`` is at least the 0-based call number).
What the UNet sees is captured inside it: the first cross-attention block's ``encoder_hidden_states``,
SDXL's ``add_embedding`` input (pooled text embeds first), and the UNet output at ``conv_out``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ml_lib.diffusion.engine.control import load_controlnets
from ml_lib.diffusion.engine.executor import execute
from ml_lib.diffusion.engine.pool import LoadedPipeline
from ml_lib.diffusion.imaging.store import InputStore
from ml_lib.diffusion.plan import ControlUse, GenerationPlan, ImageRef, ModelFormat, ModelRef
from ml_lib.diffusion.planning.prompt_schedule import plan_prompt_schedule
from ml_lib.diffusion.testing.tiny import tiny_sd1_components, tiny_sd2_components, tiny_sdxl_components
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_controlnet

CPU = torch.device("cpu")
BUILDERS = {"sd1": tiny_sd1_components, "sd2": tiny_sd2_components, "sdxl": tiny_sdxl_components}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pipes() -> dict[str, LoadedPipeline]:
    out = {}
    for family, build in BUILDERS.items():
        pipe = build()
        pipe.set_progress_bar_config(disable=True)
        out[family] = LoadedPipeline(pipe, (family, None, "float32", "cpu", "none"))
    return out


def make_plan(
    prompt: str,
    negative: str = "blurry",
    *,
    family: str = "sd1",
    steps: int = 4,
    cfg: float = 5.0,
    batch: int = 1,
    schedule: bool = True,
    empty_negative: str = "zeros",
    sampler: str = "Euler",
) -> GenerationPlan:
    return GenerationPlan(
        prompt=prompt,
        negative_prompt=negative,
        model=ModelRef(f"tiny-{family}", ModelFormat.DIFFUSERS, family),
        width=32,
        height=32,
        steps=steps,
        cfg_scale=cfg,
        sampler=sampler,
        schedule="Uniform",
        seed=3,
        batch_size=batch,
        clip_skip=1,
        device="cpu",
        dtype="float32",
        output_dir="",
        name_template="",
        prompt_schedule=plan_prompt_schedule(prompt, negative, steps, sampler) if schedule else None,
        sdxl_empty_negative=empty_negative,
    )


@contextmanager
def capture(unet: Any) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Per UNet call: cross-attention context, pooled text embeds (SDXL), raw and returned UNet output."""
    seen: dict[str, list[torch.Tensor]] = {"hidden": [], "pooled": [], "raw": [], "returned": []}
    attention = next(m for m in unet.modules() if type(m).__name__ == "Transformer2DModel")
    handles = [
        attention.register_forward_pre_hook(
            lambda _m, _a, kw: seen["hidden"].append(kw["encoder_hidden_states"].clone()), with_kwargs=True
        )
    ]
    if isinstance(getattr(unet, "conv_out", None), torch.nn.Module):  # a UNet (a ControlNet has none)
        handles.append(
            unet.conv_out.register_forward_hook(lambda _m, _a, out: seen["raw"].append(out.clone()))
        )
        handles.append(
            unet.register_forward_hook(lambda _m, _a, out: seen["returned"].append(out[0].clone()))
        )
    if getattr(unet, "add_embedding", None) is not None:
        width = unet.add_embedding.linear_1.in_features - 6 * unet.config.addition_time_embed_dim
        handles.append(
            unet.add_embedding.register_forward_pre_hook(
                lambda _m, args: seen["pooled"].append(args[0][:, :width].clone())
            )
        )
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def by_hand(pipe: Any, text: str, negative: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[negative; text] as diffusers encodes them (and SDXL's pooled pair)."""
    with torch.inference_mode():
        out = pipe.encode_prompt(
            text,
            device=CPU,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negative,
        )
    if len(out) == 4:
        pe, ne, pp, npp = out
        return torch.cat([ne, pe]), torch.cat([npp, pp])
    pe, ne = out
    return torch.cat([ne, pe]), None


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_prompt_editing_switches_after_the_step_a1111_names(
    pipes: dict[str, LoadedPipeline], family: str
) -> None:
    loaded = pipes[family]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, make_plan("a [cat:dog:2] on grass", family=family))
    # end_at_step 2: calls 0, 1, 2 condition on "cat", call 3 on "dog"
    expected = ["a cat on grass"] * 3 + ["a dog on grass"]
    assert len(seen["hidden"]) == 4
    for call, text in enumerate(expected):
        hidden, pooled = by_hand(loaded.pipe, text, "blurry")
        assert torch.equal(seen["hidden"][call], hidden), (call, text)
        if pooled is not None:
            assert torch.equal(seen["pooled"][call], pooled), (call, text)


def test_second_order_sampler_counts_every_unet_call(pipes: dict[str, LoadedPipeline]) -> None:
    loaded = pipes["sd1"]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, make_plan("a [cat:dog:0.5]", steps=3, sampler="Heun"))
    # A1111 schedules Heun over 2 x 3 = 6 calls (end_at_step 3); diffusers' Heun, like k-diffusion's, makes
    # 5 (the last step has no correction): calls 0..3 condition on "a cat", call 4 on "a dog".
    assert len(seen["hidden"]) == 5
    cat, dog = by_hand(loaded.pipe, "a cat", "blurry")[0], by_hand(loaded.pipe, "a dog", "blurry")[0]
    for call, hidden in enumerate(seen["hidden"]):
        assert torch.equal(hidden, cat if call < 4 else dog), call


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_alternation_switches_every_call_and_encodes_each_text_once(
    pipes: dict[str, LoadedPipeline], family: str
) -> None:
    loaded = pipes[family]
    encoders = [e for e in (loaded.pipe.text_encoder, getattr(loaded.pipe, "text_encoder_2", None)) if e]
    runs: list[int] = []
    hooks = [e.register_forward_hook(lambda *_: runs.append(1)) for e in encoders]
    try:
        with capture(loaded.pipe.unet) as seen:
            execute(loaded, make_plan("a [cat|dog]", "ugly", family=family, steps=6))
    finally:
        for hook in hooks:
            hook.remove()
    assert len(runs) == 3 * len(encoders)  # "a cat", "a dog", "ugly": once each, not once per step
    expected = ["a cat", "a cat", "a dog", "a cat", "a dog", "a cat"]  # A1111's counter starts at 0
    cat, dog = by_hand(loaded.pipe, "a cat", "ugly"), by_hand(loaded.pipe, "a dog", "ugly")
    for call, text in enumerate(expected):
        hidden, pooled = cat if text == "a cat" else dog
        assert torch.equal(seen["hidden"][call], hidden), call
        if pooled is not None:
            assert torch.equal(seen["pooled"][call], pooled), call


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_and_parts_are_predicted_separately_and_combined_with_their_weights(
    pipes: dict[str, LoadedPipeline], family: str
) -> None:
    loaded = pipes[family]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, make_plan("a cat AND a [red|blue] hat :0.5", family=family, steps=3, batch=2))
    b = 2
    for call in range(3):
        hat = "a red hat" if call in (0, 1) else "a blue hat"
        cat_hidden, cat_pooled = by_hand(loaded.pipe, "a cat", "blurry")
        hat_hidden, hat_pooled = by_hand(loaded.pipe, hat, "blurry")
        # rows: the negative, part 1, part 2, each once per image
        want = torch.cat([cat_hidden[:1]] * b + [cat_hidden[1:]] * b + [hat_hidden[1:]] * b)
        assert torch.equal(seen["hidden"][call], want), call
        if cat_pooled is not None and hat_pooled is not None:
            pooled = torch.cat([cat_pooled[:1]] * b + [cat_pooled[1:]] * b + [hat_pooled[1:]] * b)
            assert torch.equal(seen["pooled"][call], pooled), call
        raw, returned = seen["raw"][call], seen["returned"][call]
        assert raw.shape[0] == 6 and returned.shape[0] == 4  # folded back to the pipeline's [uncond, cond]
        uncond, cat, hat_out = raw[:b], raw[b : 2 * b], raw[2 * b :]
        assert torch.equal(returned[:b], uncond)
        torch.testing.assert_close(returned[b:], uncond + 1.0 * (cat - uncond) + 0.5 * (hat_out - uncond))


def test_and_without_cfg_applies_the_whole_formula(pipes: dict[str, LoadedPipeline]) -> None:
    loaded = pipes["sd1"]
    with capture(loaded.pipe.unet) as seen:
        execute(loaded, make_plan("a cat :0.5 AND a dog :0.25", cfg=1.0, steps=2))
    for call in range(2):
        raw, returned = seen["raw"][call], seen["returned"][call]
        assert raw.shape[0] == 3 and returned.shape[0] == 1
        u = raw[:1]
        torch.testing.assert_close(returned, u + 1.0 * (0.5 * (raw[1:2] - u) + 0.25 * (raw[2:3] - u)))
        negative = by_hand(loaded.pipe, "a cat", "blurry")[0][:1]
        assert torch.equal(seen["hidden"][call][:1], negative)  # A1111 computes uncond even at CFG 1


def pixels(plan: GenerationPlan, loaded: LoadedPipeline) -> np.ndarray:
    return np.asarray(execute(loaded, plan).images[0], dtype=np.int16)


def test_a_constant_schedule_gives_exactly_the_plain_prompts_image(pipes: dict[str, LoadedPipeline]) -> None:
    loaded = pipes["sd1"]
    long = ", ".join(["a red circle on a blue square"] * 14)  # several 75-token chunks: padding on both paths
    plain = make_plan("a dog, " + long, schedule=False)
    scheduled = make_plan("a [cat:dog:0], " + long)
    assert scheduled.prompt_schedule is not None and plain.prompt_schedule is None
    assert scheduled.prompt_schedule.parts[0].texts == ("a dog, " + long,)
    assert np.array_equal(pixels(plain, loaded), pixels(scheduled, loaded))
    # two equal halves of one prompt: the same image up to rounding
    halves = pixels(make_plan("a dog :0.5 AND a dog :0.5"), loaded)
    whole = pixels(make_plan("a dog", schedule=False), loaded)
    assert np.abs(halves - whole).max() <= 1


@pytest.mark.parametrize("scheduled", [False, True])
def test_sdxl_empty_negative_is_zeros_or_encoded_as_set(
    pipes: dict[str, LoadedPipeline], scheduled: bool
) -> None:
    loaded = pipes["sdxl"]
    prompt = "a [cat:dog:1]" if scheduled else "a cat"
    with capture(loaded.pipe.unet) as zeros:
        execute(loaded, make_plan(prompt, "", family="sdxl", steps=2, schedule=scheduled))
    with capture(loaded.pipe.unet) as encoded:
        execute(
            loaded, make_plan(prompt, "", family="sdxl", steps=2, schedule=scheduled, empty_negative="encode")
        )
    with torch.inference_mode():  # "" through both encoders, as ComfyUI's CLIPTextEncode does
        empty, _, empty_pooled, _ = loaded.pipe.encode_prompt(
            "", device=CPU, do_classifier_free_guidance=False
        )
    for call in range(2):
        assert not zeros["hidden"][call][0].any() and not zeros["pooled"][call][0].any()
        assert zeros["hidden"][call][1].abs().sum() > 0
        assert torch.equal(encoded["hidden"][call][:1], empty)
        assert torch.equal(encoded["pooled"][call][:1], empty_pooled)
        assert torch.equal(zeros["hidden"][call][1], encoded["hidden"][call][1])


def test_controlnet_sees_the_scheduled_conditioning_too(
    pipes: dict[str, LoadedPipeline], tmp_path: Path
) -> None:
    loaded = pipes["sd1"]
    folder = write_tiny_controlnet(loaded.pipe, tmp_path / "cn", seed=1)
    stored = InputStore(tmp_path / "inputs").put(Image.new("RGB", (32, 32), (200, 30, 30)))
    image = ImageRef(str(tmp_path / "inputs" / stored.path), stored.sha256, 32, 32)
    plan = dataclasses.replace(
        make_plan("a [cat:dog:1]", steps=3), controls=(ControlUse(str(folder), image),)
    )
    net = load_controlnets(loaded, plan.controls, dtype="float32", device="cpu")[0]
    with capture(loaded.pipe.unet) as unet_seen, capture(net) as control_seen:
        execute(loaded, plan)
    assert len(control_seen["hidden"]) == len(unet_seen["hidden"]) == 3
    for call, text in enumerate(["a cat", "a cat", "a dog"]):
        hidden = by_hand(loaded.pipe, text, "blurry")[0]
        assert torch.equal(unet_seen["hidden"][call], hidden) and torch.equal(
            control_seen["hidden"][call], hidden
        )
