"""Live previews (engine/preview.py): a small VAE decodes outright; a large one goes through a linear
latent → RGB map fitted from the VAE itself."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.engine import preview
from ml_lib.diffusion.result import StepInfo


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ImageGenerator:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home"), model_roots=()), device="cpu") as g:
        yield g


def run(gen: ImageGenerator) -> tuple[dict[int, np.ndarray], np.ndarray]:
    previews: dict[int, np.ndarray] = {}

    def on_step(info: StepInfo) -> None:
        assert info.preview is not None
        if info.step in (1, info.total):
            image = Image.open(io.BytesIO(info.preview()))
            assert image.format == "PNG" and image.mode == "RGB"
            previews[info.step] = np.asarray(image, dtype=np.float32) / 255

    result = gen.generate("a red circle on the left, light blue background", steps=8, seed=1, on_step=on_step,
                          save=False)  # fmt: skip
    assert result.plan.model.name == "demo" and sorted(previews) == [1, 8]
    return previews, np.asarray(result.images[0].convert("RGB"), dtype=np.float32) / 255


def test_small_vae_previews_are_its_own_decode(gen: ImageGenerator) -> None:
    previews, final = run(gen)
    assert previews[8].shape == final.shape == (64, 64, 3)
    assert np.abs(previews[8] - final).max() <= 1 / 255 + 1e-6  # the last step's preview is the image
    assert np.abs(previews[1] - final).mean() > 0.02  # the first step's is not yet


def test_large_vae_previews_use_the_fitted_linear_map(
    gen: ImageGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview, "SMALL_DECODER", 0)  # treat the demo's VAE as a full-size one
    gen._pipelines().clear()  # the preview method is chosen once per loaded pipeline
    previews, final = run(gen)
    assert previews[8].shape == final.shape  # 16x16 latent cells, upscaled 4x
    # A linear map cannot draw the demo's decoder exactly (its colours come out paler), but it must still
    # show the picture: closer to it than a flat gray, its channels following the image's layout.
    preview_8 = previews[8]
    assert np.abs(preview_8 - final).mean() < np.abs(0.5 - final).mean()
    corr = [np.corrcoef(preview_8[..., c].ravel(), final[..., c].ravel())[0, 1] for c in range(3)]
    assert np.mean(corr) > 0.5, corr


class LinearVAE(torch.nn.Module):
    """A VAE whose decoder is exactly linear in the latents (never clipped) and whose encoder spans all
    four latent channels."""

    config = SimpleNamespace(block_out_channels=(8, 8, 8, 8), scaling_factor=0.5)
    decode_weight = torch.tensor([[0.4, 0.1, -0.2], [0.0, 0.3, 0.2], [0.2, -0.1, 0.3], [0.2, 0.2, 0.1]])
    decode_bias = torch.tensor([-0.1, 0.05, 0.0])

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:  # as diffusers' ModelMixin reports it
        return self.unused.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unused.dtype

    def encode(self, x: torch.Tensor) -> SimpleNamespace:
        rgb = torch.nn.functional.avg_pool2d(x, 8)
        z = torch.cat([rgb, rgb[:, :1] * rgb[:, 1:2]], dim=1)  # four independent channels
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: z))

    def decode(self, z: torch.Tensor) -> SimpleNamespace:
        rgb = torch.einsum("bchw,cd->bdhw", z, self.decode_weight) + self.decode_bias.view(1, 3, 1, 1)
        return SimpleNamespace(sample=rgb.repeat_interleave(8, 2).repeat_interleave(8, 3))


def test_fitted_map_recovers_a_linear_decoder() -> None:
    vae = LinearVAE()
    fitted = preview.fit_latent_rgb(vae)
    assert fitted.scale == 8
    # pipeline latents are z * scaling_factor; the decoder draws (z P + q) in -1..1, i.e. (z P + q + 1) / 2
    expected = vae.decode_weight / (2 * vae.config.scaling_factor)
    assert torch.allclose(fitted.weight, expected, atol=1e-4)
    assert torch.allclose(fitted.bias, (vae.decode_bias + 1) / 2, atol=1e-4)
