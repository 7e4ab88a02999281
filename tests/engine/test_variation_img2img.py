"""Variation seeds and seed resize in img2img, inpaint and the hires fix's second pass, as A1111 noises
them (``ImageRNG.first`` for every pass that starts from latents), on tiny SD1 pipelines.

DDIM makes the check direct: its first UNet input is ``sqrt(a_t) * init + sqrt(1 - a_t) * noise`` (no
input scaling), with ``t`` the timestep the UNet receives. Two runs that differ only in the noise differ by
``sqrt(1 - a_t) * (noise - other noise)``; the noise diffusers draws itself is the draw after the VAE's
sample from the image's generator. A1111's noise is :func:`image_noise`, whose slerp is checked element by
element in ``test_hires.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.executor import _decode, _encode
from ml_lib.diffusion.engine.hires import hires_pass
from ml_lib.diffusion.engine.pool import LoadedPipeline
from ml_lib.diffusion.engine.seeds import image_noise
from ml_lib.diffusion.engine.variants import pipeline_view
from ml_lib.diffusion.plan import HiresPlan, VariationPlan
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components

from .test_prompt_schedule import make_plan

CPU = torch.device("cpu")
FAST: dict[str, Any] = dict(width=32, height=32, steps=4, cfg_scale=5.0, sampler="DDIM", save=False)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageGenerator]:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home")), device="cpu") as g:
        yield g


class FirstInputs:
    """Each UNet forward's (sample, timestep) while active."""

    def __init__(self, unet: Any = None) -> None:
        self.unet = unet
        self.calls: list[tuple[torch.Tensor, int]] = []

    def __enter__(self) -> FirstInputs:
        from diffusers import UNet2DConditionModel

        def hook(module: torch.nn.Module, args: tuple[Any, ...], _out: object) -> None:
            if isinstance(module, UNet2DConditionModel) and (self.unet is None or module is self.unet):
                self.calls.append((args[0].detach().clone(), int(args[1])))

        self._handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def scene() -> Image.Image:
    image = Image.new("RGB", (32, 32), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((8, 8, 24, 24), fill=(230, 40, 40))
    return image


def mask() -> Image.Image:
    m = Image.new("L", (32, 32), 0)
    ImageDraw.Draw(m).rectangle((8, 8, 23, 23), fill=255)
    return m


def alpha_bar(t: int) -> float:
    """alpha_bar_t of the tiny models' training schedule (what DDIM's add_noise uses)."""
    from diffusers import DDIMScheduler

    return float(DDIMScheduler.from_config(tiny_sd1_components().scheduler.config).alphas_cumprod[t])


def diffusers_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The noise diffusers' img2img/inpaint draws for one image: after the VAE's sample."""
    g = torch.Generator("cpu").manual_seed(seed)
    torch.randn((1, *shape), generator=g)
    return torch.randn((1, *shape), generator=g)[0]


@pytest.mark.parametrize("masked", [False, True])
def test_img2img_and_inpaint_noise_is_a1111s_variation_noise(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, masked: bool
) -> None:
    model = str(tiny_sd1.single_file)
    inputs: dict[str, Any] = dict(init_image=scene(), strength=0.5, seed=11, **FAST)
    if masked:
        inputs.update(mask=mask(), mask_blur=0)
    with FirstInputs() as plain:  # one image: a plain batch would give the second image seed 12
        gen.generate("a ball", model=model, **inputs)
    with FirstInputs() as varied:
        result = gen.generate(
            "a ball", model=model, variation_seed=22, variation_strength=0.3, batch_size=2, **inputs
        )
    assert result.seeds == (11, 11) and result.plan.subseeds == (22, 23)
    (x_plain, t), (x_varied, t2) = plain.calls[0], varied.calls[0]
    assert t == t2 and x_varied.shape[0] == 4  # CFG rows [uncond x2, cond x2], each image's latents
    shape = (4, 16, 16)  # tiny SD1's VAE halves each side
    s = (1 - alpha_bar(t)) ** 0.5
    for i, subseed in enumerate((22, 23)):
        ours = image_noise(shape, 11, subseed, result.plan.variation, torch.Generator().manual_seed(11), 2)
        expected = x_plain[0] + s * (ours - diffusers_noise(11, shape))
        torch.testing.assert_close(x_varied[i], expected, atol=1e-5, rtol=1e-5)
    assert (x_varied[0] - x_varied[1]).abs().mean() > 1e-3  # each image has its own variation seed


def test_inpaint_at_full_strength_starts_from_the_variation_noise(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles
) -> None:
    inputs: dict[str, Any] = dict(init_image=scene(), mask=mask(), strength=1.0, seed=5, **FAST)
    with FirstInputs() as varied:
        result = gen.generate(
            "a ball", model=str(tiny_sd1.single_file), variation_seed=9, variation_strength=0.6,
            seed_resize_from=(24, 24), **inputs,
        )  # fmt: skip
    ours = image_noise((4, 16, 16), 5, 9, result.plan.variation, torch.Generator().manual_seed(5), 2)
    assert torch.equal(varied.calls[0][0][0], ours)  # DDIM's initial sigma is 1: the noise itself


def test_the_hires_pass_draws_a1111s_variation_noise_at_its_size() -> None:
    pipe = tiny_sd1_components()
    pipe.set_progress_bar_config(disable=True)
    loaded = LoadedPipeline(pipe, ("sd1", None, "float32", "cpu", "none"))
    variation = VariationPlan(seed=30, strength=0.4, resize_width=24, resize_height=24)
    plan = make_plan("a ball", steps=4, sampler="DDIM", batch=2)
    plan = dataclasses.replace(
        plan,
        seed=7,
        variation=variation,
        hires=HiresPlan(upscaler="Latent (nearest)", scale=2.0, steps=2, denoise=0.5),
    )
    first = torch.randn((2, 4, 16, 16), generator=torch.Generator().manual_seed(0))
    embeds = _encode(pipe, plan, CPU)
    view = pipeline_view(loaded, "img2img")
    with FirstInputs(pipe.unet) as seen:
        hires_pass(
            loaded, plan, first, plan.seeds[:2], base_embeds=embeds,
            encode=lambda p, q: _encode(p, q, CPU), schedule=lambda s: pytest.fail("no schedule"),
            decode=lambda p, x: _decode(p, x, plan), step_end=lambda *a: a[3], device=CPU,
            subseeds=plan.subseeds[:2],
        )  # fmt: skip
    assert view.scheduler is pipe.scheduler  # the hires scheduler was the pass's only
    x, t = seen.calls[0]
    upscaled = first.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest, by hand
    a = alpha_bar(t)
    for i, subseed in enumerate((30, 31)):
        # A1111's hires ImageRNG: 32x32 latents, the variation slerped at the resize size (12x12) and
        # pasted centred into the seed's full-size noise
        noise = image_noise((4, 32, 32), 7, subseed, variation, torch.Generator().manual_seed(7), 2)
        torch.testing.assert_close(x[i], a**0.5 * upscaled[i] + (1 - a) ** 0.5 * noise, atol=1e-5, rtol=1e-5)


def test_a_cached_view_follows_the_sampler_of_the_next_plan(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles
) -> None:
    """img2img views are cached per pooled pipeline; a later plan's sampler must reach them."""
    model = str(tiny_sd1.single_file)
    inputs: dict[str, Any] = dict(init_image=scene(), strength=0.5, seed=3, **FAST)
    with FirstInputs() as euler:
        gen.generate("a ball", model=model, **{**inputs, "sampler": "Euler"})
    with FirstInputs() as ddim:
        gen.generate("a ball", model=model, **inputs)
    # Under one scheduler both runs would start at the same timestep: A1111 runs int(4 x 0.5) + 1 = 3 of the
    # 4 steps, from DDIM's leading 501 and from Euler's linspace 666 (diffusers' own timesteps of each).
    assert (euler.calls[0][1], ddim.calls[0][1]) == (666, 501)
