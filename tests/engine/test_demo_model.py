"""The shipped demo model: loads offline, follows colour, position and shape; its LoRA and ControlNet act."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ml_lib.diffusion.demo.assets import TRIGGER_WORD, has_demo_model

pytestmark = pytest.mark.skipif(
    not has_demo_model(),
    reason="the trained demo model is not in src/ml_lib/diffusion/assets/demo (run scripts/train_demo.py)",
)

_STEPS = 12


def _pixels(images: Any) -> np.ndarray:
    return (np.clip(np.asarray(images), 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def demo_pipe() -> Any:
    import torch
    from diffusers import StableDiffusionPipeline

    from ml_lib.diffusion.demo.assets import demo_model_dir

    pipe = StableDiffusionPipeline.from_pretrained(
        demo_model_dir(), dtype=torch.float32, local_files_only=True, safety_checker=None,
        requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe: Any, prompts: list[str], seed: int = 0, **extra: Any) -> np.ndarray:
    import torch

    out = pipe(
        prompts, num_inference_steps=_STEPS, guidance_scale=4.0, generator=torch.Generator().manual_seed(seed),
        height=64, width=64, output_type="np", **extra,
    )  # fmt: skip
    return _pixels(out.images)


def test_loads_offline_as_a_standard_pipeline(demo_pipe: Any) -> None:
    assert type(demo_pipe).__name__ == "StableDiffusionPipeline"
    assert demo_pipe.tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]
    assert demo_pipe.unet.config.cross_attention_dim == demo_pipe.text_encoder.config.hidden_size


@pytest.fixture(scope="module")
def red_left(demo_pipe: Any) -> np.ndarray:
    """Four 64x64 images of "a red circle on the left, white background" (seed 0)."""
    return _generate(demo_pipe, ["a red circle on the left, white background"] * 4)


def _red(images: np.ndarray) -> np.ndarray:
    return np.stack([(i[..., 0] > 150) & (i[..., 1] < 100) & (i[..., 2] < 100) for i in images]).mean(axis=0)


def test_red_circle_is_red(red_left: np.ndarray) -> None:
    from demo_kit.analysis import analyse

    found = [analyse(image) for image in red_left]
    assert sum(a.color == "red" for a in found) >= 3, [a.color for a in found]
    assert _red(red_left).mean() > 0.03  # a visible red object


def test_red_circle_on_the_left_is_on_the_left(red_left: np.ndarray) -> None:
    red = _red(red_left)
    assert red[:, :32].sum() > 2 * red[:, 32:].sum(), "more red on the left than on the right"


def test_star_prompt_draws_a_star(demo_pipe: Any) -> None:
    from demo_kit.analysis import analyse

    images = _generate(demo_pipe, ["a big yellow star in the middle, black background"] * 4)
    shapes = [analyse(image).shape for image in images]
    assert shapes.count("star") >= 3, shapes


def test_style_lora_draws_its_outline_only_when_applied(demo_pipe: Any) -> None:
    from demo_kit.analysis import analyse

    from ml_lib.diffusion.demo.assets import demo_lora_path

    # Without the LoRA the prompt carries no trigger (the planner adds it with the LoRA): the base model never
    # learned the trigger word, and alone it scrambles the picture.
    plain = ["a big green square in the middle, white background"] * 2
    before = _generate(demo_pipe, plain, seed=3)
    demo_pipe.load_lora_weights(str(demo_lora_path()), adapter_name="demo_style")
    try:
        after = _generate(demo_pipe, [f"{TRIGGER_WORD}, {p}" for p in plain], seed=3)
    finally:
        demo_pipe.unload_lora_weights()
    again = _generate(demo_pipe, plain, seed=3)
    assert [analyse(i).outlined for i in before] == [False, False]
    assert [analyse(i).outlined for i in after] == [True, True]
    assert np.array_equal(again, before)


def test_controlnet_follows_the_mask(demo_pipe: Any) -> None:
    import torch
    from demo_kit.analysis import analyse, mask_iou
    from demo_kit.world import Scene, control_image, render
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    from ml_lib.diffusion.demo.assets import demo_controlnet_dir

    controlnet = ControlNetModel.from_pretrained(
        demo_controlnet_dir(), dtype=torch.float32, local_files_only=True
    )
    pipe = StableDiffusionControlNetPipeline(**demo_pipe.components, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    target = render(Scene("square", "blue", "big", "right", "white")).mask
    image = _generate(
        pipe, ["a big blue square on the right, white background"], image=control_image(target)
    )[0]
    assert mask_iou(analyse(image).mask, target) > 0.6


def _shipped_world() -> int:
    import json

    from ml_lib.diffusion.demo.assets import demo_folder

    return int(json.loads((demo_folder() / "training.json").read_text()).get("world", 1))


world2 = pytest.mark.skipif(
    not has_demo_model() or _shipped_world() < 2, reason="needs the world-2 demo model (issue 19)"
)


@world2
def test_what_people_type_first(demo_pipe: Any) -> None:
    """Issue 19: "a red circle on a blue background" and "white star on black" are inside world 2."""
    from demo_kit.analysis import analyse

    for prompt, color, background in (
        ("a red circle on a blue background", "red", "blue"),
        ("white star on black", "white", "black"),
    ):
        found = [analyse(i) for i in _generate(demo_pipe, [prompt] * 4)]
        assert sum(a.color == color and a.background == background for a in found) >= 3, prompt


@world2
@pytest.mark.parametrize("said", [None, "top", "right"])
def test_controlnet_wins_over_a_neutral_or_conflicting_caption(demo_pipe: Any, said: str | None) -> None:
    """Mask at the bottom left; the caption says no position or another one: the object follows the mask."""
    import torch
    from demo_kit.analysis import analyse, mask_iou
    from demo_kit.world import Scene, captions, control_image, render
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    from ml_lib.diffusion.demo.assets import demo_controlnet_dir

    controlnet = ControlNetModel.from_pretrained(
        demo_controlnet_dir(), dtype=torch.float32, local_files_only=True
    )
    pipe = StableDiffusionControlNetPipeline(**demo_pipe.components, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    scene = Scene("circle", "red", "big", "bottom", "white", dx=-16)
    target = render(scene).mask
    prompt = captions(scene, position=said)[0]
    images = _generate(pipe, [prompt] * 2, image=control_image(target))
    assert min(mask_iou(analyse(i).mask, target) for i in images) >= 0.7, prompt


@world2
def test_inpainting_draws_the_prompts_object_in_the_mask(demo_pipe: Any) -> None:
    """A box on the left of a plain blue image, "a yellow square on the left": a yellow square in the box."""
    from demo_kit.analysis import analyse
    from diffusers import AutoPipelineForInpainting
    from PIL import Image

    pipe = AutoPipelineForInpainting.from_pipe(demo_pipe)
    pipe.set_progress_bar_config(disable=True)
    box = np.zeros((64, 64), np.uint8)
    box[16:48, 0:32] = 255
    init = Image.new("RGB", (64, 64), (30, 70, 220))
    prompt = ["a big yellow square on the left, blue background"] * 2
    images = _generate(pipe, prompt, image=init, mask_image=Image.fromarray(box), strength=0.75)
    for image in images:
        found = analyse(image)
        assert found.color == "yellow" and (found.mask & (box > 0)).sum() >= 0.8 * found.area > 0
