"""Hires fix, SDXL refiner hand-off, variation seeds and batch count on tiny real pipelines.

UNet calls are counted (and their latent shapes recorded) with a global forward hook, so each test
asserts what ran, not only what came out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine.seeds import image_noise
from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.output.infotext import parse_infotext
from ml_lib.diffusion.output.infotext_passes import parse_passes
from ml_lib.diffusion.output.metadata import read_metadata
from ml_lib.diffusion.plan import VariationPlan
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sdxl_refiner_components

# Tiny SD1's VAE halves each side: a 32x32 image is a 16x16 latent.
FAST = dict(width=32, height=32, steps=3, cfg_scale=5.0, sampler="Euler")


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageGenerator]:
    home = tmp_path_factory.mktemp("home")
    with ImageGenerator(Settings(home=home), device="cpu", pool_size=2) as generator:
        yield generator


class UNetCalls:
    """(cross-attention width, latent height, latent width, batch) of every UNet forward while active."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, int]] = []
        self.first_input: torch.Tensor | None = None

    def __enter__(self) -> UNetCalls:
        from diffusers import UNet2DConditionModel

        def hook(module: torch.nn.Module, args: tuple[object, ...], _out: object) -> None:
            if isinstance(module, UNet2DConditionModel):
                sample = args[0]
                assert isinstance(sample, torch.Tensor)
                if self.first_input is None:
                    self.first_input = sample.detach().clone()
                width = int(module.config.cross_attention_dim)
                self.calls.append((width, sample.shape[2], sample.shape[3], sample.shape[0]))

        self._handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def sizes(self) -> list[tuple[int, int]]:
        return [(h, w) for _, h, w, _ in self.calls]


def pixels(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.mark.parametrize(
    "upscaler",
    ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (nearest-exact)", "Lanczos", "Nearest"],
)
def test_second_pass_runs_at_the_upscaled_size_with_the_hires_steps(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, upscaler: str
) -> None:
    with UNetCalls() as unet:
        result = gen.generate(
            "a red circle", model=str(tiny_sd1.single_file), seed=3, save=False, hires_upscaler=upscaler,
            hires_steps=2, hires_denoise=0.5, **FAST,
        )  # fmt: skip
    # 3 first-pass steps on 16x16 latents, then exactly 2 (Hires steps) on 32x32; CFG doubles the batch.
    assert unet.sizes() == [(16, 16)] * 3 + [(32, 32)] * 2
    assert all(batch == 2 for *_, batch in unet.calls)
    assert result.images[0].size == (64, 64)
    assert result.plan.hires is not None and result.plan.hires.upscaler == upscaler


def test_upscale_modes_give_different_images_and_one_pass_differs(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles
) -> None:
    model = str(tiny_sd1.single_file)
    images = {
        up: pixels(
            gen.generate(
                "a circle", model=model, seed=5, save=False, hires_upscaler=up, hires_steps=1, **FAST
            ).images[0]
        )
        for up in ("Latent", "Latent (nearest)", "Lanczos", "Nearest")
    }
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(images[a] - images[b]).mean() > 0.1, (a, b)


def test_hires_steps_zero_means_the_first_pass_steps_and_resize_crops(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles
) -> None:
    with UNetCalls() as unet:
        result = gen.generate(
            "a circle", model=str(tiny_sd1.single_file), seed=5, save=False, hires_resize=(64, 48), **FAST
        )
    # Hires resize 64x48 from 32x32: upscaled to 64x64, 16 px cropped off (A1111's truncate_y = 2 latent
    # pixels of 8 image pixels); steps 0 → the first pass's 3.
    assert unet.sizes() == [(16, 16)] * 3 + [(24, 32)] * 3
    assert result.images[0].size == (64, 48)


def test_variation_noise_is_a1111s_slerp_by_hand() -> None:
    shape = (4, 6, 5)
    variation = VariationPlan(seed=22, strength=0.3)
    got = image_noise(shape, 11, 22, variation, torch.Generator("cpu").manual_seed(11))
    low = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(11))
    high = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(22))
    # A1111's slerp over dim 1 of the per-image (C, H, W) tensor, written out element by element.
    expected = torch.empty(shape)
    for c in range(shape[0]):
        for w in range(shape[2]):
            a, b = low[c, :, w], high[c, :, w]
            dot = float((a / a.norm() * (b / b.norm())).sum())
            omega = np.arccos(dot)
            expected[c, :, w] = (np.sin(0.7 * omega) * a + np.sin(0.3 * omega) * b) / np.sin(omega)
    assert torch.allclose(got, expected, atol=1e-5)


def test_seed_resize_pastes_the_smaller_noise_centred() -> None:
    shape = (4, 8, 8)
    gen = torch.Generator("cpu").manual_seed(9)
    got = image_noise(shape, 9, None, VariationPlan(resize_width=32, resize_height=32), gen, 8)
    small = torch.randn((4, 4, 4), generator=torch.Generator("cpu").manual_seed(9))
    full = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(9))
    assert torch.equal(got[:, 2:6, 2:6], small)
    assert torch.equal(got[:, :2], full[:, :2]) and torch.equal(got[:, :, 6:], full[:, :, 6:])
    # The image's generator went on past the full-size draw, as A1111's does.
    twin = torch.Generator("cpu").manual_seed(9)
    torch.randn(shape, generator=twin)
    assert torch.equal(torch.randn(shape, generator=gen), torch.randn(shape, generator=twin))


def test_the_pipeline_starts_from_the_variation_noise(gen: ImageGenerator, tiny_sd1: TinyModelFiles) -> None:
    fast = {**FAST, "sampler": "DDIM", "steps": 2}  # DDIM: the UNet's first input is the noise itself
    with UNetCalls() as unet:
        result = gen.generate(
            "a circle", model=str(tiny_sd1.single_file), seed=11, variation_seed=22, variation_strength=0.3,
            save=False, **fast,
        )  # fmt: skip
    expected = image_noise((4, 16, 16), 11, 22, result.plan.variation, torch.Generator().manual_seed(11), 2)
    assert unet.first_input is not None and torch.equal(unet.first_input[0], expected)
    # Resize from the same size changes nothing: the plain path and the noise path agree exactly.
    plain = gen.generate("a circle", model=str(tiny_sd1.single_file), seed=11, save=False, **fast)
    same = gen.generate(
        "a circle", model=str(tiny_sd1.single_file), seed=11, seed_resize_from=(32, 32), save=False, **fast
    )
    assert np.array_equal(pixels(plain.images[0]), pixels(same.images[0]))
    assert np.abs(pixels(plain.images[0]) - pixels(result.images[0])).mean() > 0.1


def test_batch_count_times_size_seeds_and_variation_infotext(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, tmp_path: Path
) -> None:
    model = str(tiny_sd1.single_file)
    with UNetCalls() as unet:
        run = gen.generate("a star", model=model, seed=40, batch_size=2, batch_count=2, save=False, **FAST)
    assert run.seeds == (40, 41, 42, 43) and len(run.images) == 4
    assert [b for *_, b in unet.calls] == [4] * 6  # two batches of 2 (x2 for CFG), 3 steps each
    alone = gen.generate("a star", model=model, seed=42, save=False, **FAST)
    assert np.abs(pixels(run.images[2]) - pixels(alone.images[0])).max() <= 2
    varied = gen.generate(
        "a star", model=model, seed=40, batch_size=2, batch_count=2, variation_seed=7, variation_strength=0.5,
        output_dir=str(tmp_path), **FAST,
    )  # fmt: skip
    assert varied.seeds == (40,) * 4 and varied.plan.subseeds == (7, 8, 9, 10)
    for i, path in enumerate(varied.paths):
        info = read_metadata(path).parsed
        assert info is not None and info.seed == 40
        passes = parse_passes(info)
        assert (passes.variation_seed, passes.variation_strength) == (7 + i, 0.5)
    # All seeds are 40: reproduce finds the image by its variation seed.
    again = gen.reproduce(varied.paths[2], output_dir=tmp_path / "again")
    assert again.seeds == (40,) and np.array_equal(pixels(again.images[0]), pixels(varied.images[2]))
    assert "Variation seed: 9," in (read_metadata(again.paths[0]).infotext or "")


def test_hires_infotext_and_reproduce(gen: ImageGenerator, tiny_sd1: TinyModelFiles, tmp_path: Path) -> None:
    result = gen.generate(
        "a red circle", model=str(tiny_sd1.single_file), seed=8, hires_upscaler="Latent (bicubic)",
        hires_scale=1.5, hires_steps=2, hires_denoise=0.6, output_dir=str(tmp_path), **FAST,
    )  # fmt: skip
    meta = read_metadata(result.paths[0])
    assert meta.parsed is not None
    text = meta.infotext or ""
    for piece in ("Size: 32x32", "Denoising strength: 0.6", "Hires upscale: 1.5", "Hires steps: 2",
                  "Hires upscaler: Latent (bicubic)"):  # fmt: skip
        assert piece in text
    passes = parse_passes(parse_infotext(text))
    assert passes.request_fields() == {
        "hires": True, "hires_scale": 1.5, "hires_steps": 2, "hires_upscaler": "Latent (bicubic)",
        "hires_denoise": 0.6,
    }  # fmt: skip
    again = gen.reproduce(result.paths[0], output_dir=tmp_path / "again")
    assert again.images[0].size == result.images[0].size == (48, 48)
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))


@pytest.fixture(scope="module")
def tiny_refiner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("refiners") / "sdxl-refiner-tiny"
    tiny_sdxl_refiner_components(1).save_pretrained(folder, safe_serialization=True)
    return folder


def test_refiner_takes_over_at_the_switch_point(
    tmp_path: Path, tiny_sdxl: TinyModelFiles, tiny_refiner: Path
) -> None:
    settings = Settings(home=tmp_path / "home", model_roots=(tiny_refiner.parent,))
    with ImageGenerator(settings, device="cpu") as generator:
        generator.catalog().scan()
        plan = generator.plan(
            "a lighthouse", model=str(tiny_sdxl.single_file), refiner="auto", refiner_switch=0.8,
            width=32, height=32, steps=10, cfg_scale=5.0, sampler="Euler", seed=4,
        )  # fmt: skip
        assert plan.refiner is not None and plan.refiner.model.family == "sdxl-refiner"
        decision = plan.decision("refiner")
        assert decision is not None and decision.source.value == "catalog" and "auto" in decision.reason
        with UNetCalls() as unet:
            result = generator.execute(plan, save=False)
    widths = [w for w, *_ in unet.calls]
    # Base (cross-attention 96) runs timesteps down to the switch, the refiner (64) the last 2 of 10.
    assert widths == [96] * 8 + [64] * 2
    assert result.images[0].size == (32, 32) and pixels(result.images[0]).std() > 1


class _FakeDescriptor:
    """spandrel's ImageModelDescriptor surface (``eval``, called on a BCHW tensor in 0..1): a 2x model."""

    def eval(self) -> _FakeDescriptor:
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_learned_upscaler_goes_through_spandrel(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spandrel itself cannot be installed here (it imports torchvision at import time): a stand-in module
    with its ModelLoader API checks our side (file handed over, model applied until the size is reached,
    result encoded for the second pass)."""
    import sys
    import types

    from safetensors.torch import save_file

    weights = tmp_path / "2x-test.safetensors"
    save_file({"w": torch.zeros(1)}, str(weights))
    loaded: list[str] = []

    class ModelLoader:
        def load_from_file(self, path: str) -> _FakeDescriptor:
            loaded.append(path)
            return _FakeDescriptor()

    monkeypatch.setitem(sys.modules, "spandrel", types.SimpleNamespace(ModelLoader=ModelLoader))
    with UNetCalls() as unet:
        result = gen.generate(
            "a circle", model=str(tiny_sd1.single_file), seed=2, save=False, hires_upscaler=str(weights),
            hires_scale=4, hires_steps=1, **FAST,
        )  # fmt: skip
    assert loaded == [str(weights.resolve())]
    hires = result.plan.hires
    assert hires is not None and (hires.upscaler, hires.upscaler_path) == ("2x-test", str(weights.resolve()))
    assert unet.sizes()[-1] == (64, 64) and result.images[0].size == (128, 128)
    monkeypatch.setitem(sys.modules, "spandrel", None)  # not installed: one line naming the extra
    with pytest.raises(RequestError, match=r"ml-lib\[upscalers\]"):
        gen.generate(
            "a circle",
            model=str(tiny_sd1.single_file),
            seed=2,
            save=False,
            hires_upscaler=str(weights),
            **FAST,
        )
