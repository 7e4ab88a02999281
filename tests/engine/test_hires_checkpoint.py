"""A1111's "Hires checkpoint": the hires pass on a second model, checked against the passes run by hand.

Pass 1 on model A, the same upscale, then img2img on model B with the same strength, steps and seed,
written out with diffusers' pipelines directly; the generator's image must be that image (and not the one
of the hires fix on A alone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.conditioning import encode_sd
from ml_lib.diffusion.engine.schedulers import make_scheduler
from ml_lib.diffusion.errors import ModelFamilyMismatchError, PlanError
from ml_lib.diffusion.output.infotext_passes import parse_passes
from ml_lib.diffusion.output.metadata import read_metadata
from ml_lib.diffusion.plan import GenerationPlan, HiresPlan
from ml_lib.diffusion.planning.hires import hires_schedule
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.samplers import SamplerChoice
from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_lora

FAST = dict(width=32, height=32, steps=3, cfg_scale=5.0, sampler="Euler")
HIRES = dict(hires_upscaler="Latent", hires_steps=2, hires_denoise=0.5)
PROMPT = "a red circle"


@pytest.fixture(scope="module")
def second_sd1(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    """Another tiny SD1 (other seed: other weights, same family)."""
    return write_tiny_model("sd1", tmp_path_factory.mktemp("tiny-sd1-b"), seed=7)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageGenerator]:
    home = tmp_path_factory.mktemp("home")
    with ImageGenerator(Settings(home=home), device="cpu", pool_size=2) as generator:
        yield generator


def pixels(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _pipes(folder: Path) -> tuple[Any, Any]:
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    txt = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    txt.set_progress_bar_config(disable=True)
    img = StableDiffusionImg2ImgPipeline(**txt.components)
    img.set_progress_bar_config(disable=True)
    return txt, img


def _by_hand(model_a: Path, model_b: Path, seed: int, choice: SamplerChoice) -> np.ndarray:
    """Pass 1 on A, "Latent" (bilinear) upscale x2, img2img on B (its own text encoder, scheduler, VAE)."""
    txt_a, _ = _pipes(model_a)
    txt_b, img_b = _pipes(model_b)
    cpu = torch.device("cpu")
    txt_a.scheduler = make_scheduler(choice, dict(txt_a.scheduler.config), "epsilon")
    embeds_a = encode_sd(txt_a, PROMPT, "", batch=1, clip_skip=1, cfg=True, device=cpu)
    latents = txt_a(
        **embeds_a, width=32, height=32, num_inference_steps=3, guidance_scale=5.0,
        generator=[torch.Generator("cpu").manual_seed(seed)], output_type="latent",
    ).images  # fmt: skip
    up = torch.nn.functional.interpolate(latents, size=(32, 32), mode="bilinear", antialias=False)
    total, strength = hires_schedule(3, HiresPlan(steps=2, denoise=0.5))
    img_b.scheduler = make_scheduler(choice, dict(txt_b.scheduler.config), "epsilon")
    embeds_b = encode_sd(txt_b, PROMPT, "", batch=1, clip_skip=1, cfg=True, device=cpu)
    out = img_b(
        **embeds_b, image=up, strength=strength, num_inference_steps=total, guidance_scale=5.0,
        generator=[torch.Generator("cpu").manual_seed(seed)], output_type="latent",
    ).images  # fmt: skip
    with torch.inference_mode():
        decoded = txt_b.vae.decode(out / txt_b.vae.config.scaling_factor, return_dict=False)[0]
    return pixels(txt_b.image_processor.postprocess(decoded, output_type="pil")[0])


def test_the_hires_pass_runs_on_the_second_checkpoint_as_by_hand(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, second_sd1: TinyModelFiles
) -> None:
    a, b = str(tiny_sd1.diffusers_dir), str(second_sd1.diffusers_dir)
    result = gen.generate(PROMPT, model=a, hires_checkpoint=b, seed=4, save=False, **HIRES, **FAST)
    assert result.plan.hires is not None and result.plan.hires.checkpoint is not None
    assert result.plan.hires.checkpoint.reference == b
    got = pixels(result.images[0])
    choice = SamplerChoice(result.plan.sampler, result.plan.schedule)
    expected = _by_hand(tiny_sd1.diffusers_dir, second_sd1.diffusers_dir, 4, choice)
    assert got.shape == expected.shape == (64, 64, 3)
    assert np.array_equal(got, expected)
    on_a = pixels(gen.generate(PROMPT, model=a, seed=4, save=False, **HIRES, **FAST).images[0])
    assert np.abs(on_a - got).mean() > 5  # not the hires fix on A alone
    by_hand_on_a = _by_hand(tiny_sd1.diffusers_dir, tiny_sd1.diffusers_dir, 4, choice)
    assert np.array_equal(on_a, by_hand_on_a)  # and the by-hand passes are the engine's on one model


def test_the_requests_loras_apply_to_the_second_checkpoint(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, second_sd1: TinyModelFiles, tmp_path: Path
) -> None:
    from diffusers import StableDiffusionPipeline

    # a UNet-only LoRA on the first model's layout (the same family: the same layer names)
    pipe = StableDiffusionPipeline.from_pretrained(second_sd1.diffusers_dir, safety_checker=None)
    lora = write_tiny_lora(pipe, tmp_path / "style.safetensors", seed=3, strength=2.0, text_encoder=False)
    a, b = str(tiny_sd1.diffusers_dir), str(second_sd1.diffusers_dir)
    prompt_lora = f"{PROMPT} <lora:{lora}:0.8>"
    result = gen.generate(prompt_lora, model=a, hires_checkpoint=b, seed=4, save=False, **HIRES, **FAST)
    assert [x.unet_weight for x in result.plan.loras] == [0.8]
    plain = pixels(
        gen.generate(PROMPT, model=a, hires_checkpoint=b, seed=4, save=False, **HIRES, **FAST).images[0]
    )
    got = pixels(result.images[0])
    assert np.abs(got - plain).mean() > 1  # the LoRA changed the image
    # by hand: the same LoRA on both passes (fused into A for pass 1, into B for pass 2)
    choice = SamplerChoice(result.plan.sampler, result.plan.schedule)
    expected = _by_hand_lora(tiny_sd1.diffusers_dir, second_sd1.diffusers_dir, 4, choice, lora)
    assert np.abs(got - expected).max() <= 2


def _by_hand_lora(model_a: Path, model_b: Path, seed: int, choice: SamplerChoice, lora: Path) -> np.ndarray:
    """:func:`_by_hand` with ``lora`` fused at 0.8 into both models' UNets."""
    import diffusers

    original = diffusers.StableDiffusionPipeline.from_pretrained

    def with_lora(folder: Path, **kwargs: Any) -> Any:
        pipe = original(folder, **kwargs)
        pipe.load_lora_weights(str(lora))
        pipe.fuse_lora(lora_scale=0.8)
        return pipe

    diffusers.StableDiffusionPipeline.from_pretrained = with_lora  # type: ignore[method-assign]
    try:
        return _by_hand(model_a, model_b, seed, choice)
    finally:
        diffusers.StableDiffusionPipeline.from_pretrained = original  # type: ignore[method-assign]


def test_the_infotext_names_the_hires_checkpoint_and_reads_back(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, second_sd1: TinyModelFiles, tmp_path: Path
) -> None:
    a, b = str(tiny_sd1.single_file), str(second_sd1.single_file)
    result = gen.generate(
        PROMPT, model=a, hires_checkpoint=b, seed=2, output_dir=str(tmp_path), **HIRES, **FAST
    )
    plan = result.plan
    assert plan.hires is not None and plan.hires.checkpoint is not None
    info = read_metadata(result.paths[0]).parsed
    assert info is not None
    # A1111 writes the checkpoint's short title: the file's stem and [the sha256's first 10 digits]
    checkpoint = plan.hires.checkpoint
    assert checkpoint.hash is not None and len(checkpoint.hash) == 10
    assert info.get("Hires checkpoint") == f"{second_sd1.single_file.stem} [{checkpoint.hash}]"
    passes = parse_passes(info)
    assert passes.hires_checkpoint == second_sd1.single_file.stem
    assert passes.hires_checkpoint_hash == checkpoint.hash
    assert passes.request_fields()["hires_checkpoint"] == second_sd1.single_file.stem
    # the plan in the image round-trips with the checkpoint, and reproduces the image
    again = gen.reproduce(result.paths[0], save=False)  # from the plan in the image
    assert again.plan.hires == plan.hires
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))


def test_a_hires_checkpoint_of_another_family_is_refused_up_front(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, tiny_sd2: TinyModelFiles
) -> None:
    with pytest.raises(ModelFamilyMismatchError, match=r"is a sd2 model .* choose a sd1 checkpoint") as err:
        gen.plan(PROMPT, model=str(tiny_sd1.single_file), hires_checkpoint=str(tiny_sd2.single_file), **FAST)
    assert "\n" not in str(err.value)


def test_an_edited_plan_with_another_family_hires_checkpoint_is_refused(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, tiny_sd2: TinyModelFiles
) -> None:
    plan = gen.plan(PROMPT, model=str(tiny_sd1.single_file), hires=True, **FAST)
    other = gen.plan(PROMPT, model=str(tiny_sd2.single_file), **FAST).model
    assert plan.hires is not None
    edited = dataclasses.replace(plan, hires=dataclasses.replace(plan.hires, checkpoint=other))
    with pytest.raises(PlanError, match=r"hires\.checkpoint\.family: 'sd2' is not sd1"):
        validate_plan(GenerationPlan.from_json(edited.to_json()), gen.settings.limits)
