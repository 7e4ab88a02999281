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

    prompt = [f"{TRIGGER_WORD}, a big green square in the middle, white background"] * 2
    before = _generate(demo_pipe, prompt, seed=3)
    demo_pipe.load_lora_weights(str(demo_lora_path()), adapter_name="demo_style")
    try:
        after = _generate(demo_pipe, prompt, seed=3)
    finally:
        demo_pipe.unload_lora_weights()
    again = _generate(demo_pipe, prompt, seed=3)
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
