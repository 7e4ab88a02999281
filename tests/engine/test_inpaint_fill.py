"""A1111's "Masked content" (img2img ``inpainting_fill``): fill, original, latent noise, latent nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.inpaint_fill import latent_fill
from ml_lib.diffusion.engine.preview import to_pipeline_latents
from ml_lib.diffusion.errors import PlanError, RequestError
from ml_lib.diffusion.imaging.masks import fill_masked
from ml_lib.diffusion.planning.validate import validate_plan
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components

FAST = dict(width=64, height=64, steps=4, cfg_scale=5.0, sampler="Euler", seed=4, save=False)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ImageGenerator:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home")), device="cpu") as g:
        yield g


def halves() -> tuple[Image.Image, Image.Image]:
    """Red left half, blue right half; the mask covers the right half."""
    image = Image.new("RGB", (64, 64), (220, 30, 30))
    ImageDraw.Draw(image).rectangle((32, 0, 63, 63), fill=(30, 30, 220))
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((32, 0, 63, 63), fill=255)
    return image, mask


def test_fill_paints_the_mask_with_the_surrounding_colours() -> None:
    image, mask = halves()
    out = np.asarray(fill_masked(image, mask), dtype=np.int16)
    assert np.array_equal(out[:, :32], np.asarray(image, dtype=np.int16)[:, :32])  # unmasked: exact
    right = out[:, 32:]
    assert (right[..., 0] > 150).all() and (right[..., 2] < 80).all()  # the blue is gone: red spread in


def test_latent_modes_replace_the_masked_latents() -> None:
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline(**tiny_sd1_components().components)
    image, mask = halves()
    kwargs = {"image": image, "mask_image": mask, "strength": 0.8, "width": 64, "height": 64}

    class Plan:  # the two fields latent_fill reads
        def __init__(self, fill: str) -> None:
            self.init = type("Init", (), {"inpainting_fill": fill})()
            self.seeds = (7, 8)

    assert latent_fill(pipe, Plan("original"), kwargs) is kwargs  # type: ignore[arg-type]
    with torch.inference_mode():
        pixels = pipe.image_processor.preprocess(image, height=64, width=64)
        encoded = to_pipeline_latents(pipe.vae, pipe.vae.encode(pixels).latent_dist.mode())
    noise = latent_fill(pipe, Plan("latent_noise"), kwargs)["image"]  # type: ignore[arg-type]
    zeros = latent_fill(pipe, Plan("latent_nothing"), kwargs)  # type: ignore[arg-type]
    half = encoded.shape[3] // 2
    shape = (2, *encoded.shape[1:])
    assert noise.shape == shape and zeros["image"].shape == shape
    for out in (noise, zeros["image"]):  # outside the mask: the encoded image, for every seed
        assert torch.allclose(out[:, :, :, :half], encoded[:, :, :, :half].expand(2, -1, -1, -1), atol=1e-5)
    assert torch.count_nonzero(zeros["image"][:, :, :, half:]) == 0
    for i, seed in enumerate((7, 8)):  # inside: the seed's own unit noise (A1111's create_random_tensors)
        expected = torch.randn(shape[1:], generator=torch.Generator("cpu").manual_seed(seed))
        assert torch.allclose(noise[i, :, :, half:], expected[:, :, half:])
    assert zeros["masked_image_latents"].shape == shape


def test_modes_through_the_engine(gen: ImageGenerator, tiny_sd1: TinyModelFiles) -> None:
    image, mask = halves()
    model = str(tiny_sd1.single_file)
    outs = {}
    for fill in ("original", "fill", "latent_noise", "latent_nothing"):
        result = gen.generate("a ball", model=model, init_image=image, mask=mask, strength=0.6, mask_blur=0,
                              inpainting_fill=fill, **FAST)  # fmt: skip
        assert result.plan.init is not None and result.plan.init.inpainting_fill == fill
        pixels = np.asarray(result.images[0], dtype=np.int16)
        assert np.array_equal(pixels[:, :32], np.asarray(image, dtype=np.int16)[:, :32])  # kept exactly
        outs[fill] = pixels[:, 32:]
        plan = json.loads(result.plan.to_json())
        assert ("inpainting_fill" in plan["init"]) == (fill != "original")  # old plans stay identical
    for a in outs:
        for b in outs:
            assert a == b or not np.array_equal(outs[a], outs[b]), (a, b)
    with pytest.raises(RequestError, match="Unknown masked content"):
        gen.plan("x", model=model, init_image=image, mask=mask, inpainting_fill="blur", steps=2)
    with pytest.raises(RequestError, match="needs a mask"):
        gen.plan("x", model=model, init_image=image, inpainting_fill="fill", steps=2)


def test_plan_check_and_infotext(gen: ImageGenerator, tiny_sd1: TinyModelFiles) -> None:
    import dataclasses

    from ml_lib.diffusion.output.infotext import format_infotext

    image, mask = halves()
    plan = gen.plan("x", model=str(tiny_sd1.single_file), init_image=image, mask=mask,
                    inpainting_fill="latent_noise", steps=2, seed=1)  # fmt: skip
    assert "Masked content: latent noise" in format_infotext(plan, seed=1, model_hash=None, version="t")
    assert plan.init is not None
    bad = dataclasses.replace(plan, init=dataclasses.replace(plan.init, inpainting_fill="blur"))
    with pytest.raises(PlanError, match="inpainting_fill"):
        validate_plan(bad, gen.settings.limits, allow_hub=True)
