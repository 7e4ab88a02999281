"""An image that comes out NaN (a broken LoRA, a broken VAE) is a GenerationError, never a saved black image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.errors import GenerationError
from ml_lib.diffusion.request import LoraRequest
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_lora

FAST = dict(width=64, height=64, steps=2, cfg_scale=5.0, sampler="Euler", seed=3)


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> ImageGenerator:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home")), device="cpu", pool_size=1) as g:
        yield g


def test_a_lora_with_absurd_values_is_refused_not_saved_black(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, tmp_path: Path
) -> None:
    lora = write_tiny_lora(tiny_sd1_components(), tmp_path / "wild.safetensors", seed=1, strength=1e30)
    out = tmp_path / "out"
    with pytest.raises(GenerationError, match=r"latents came out as NaN.*LoRA weights.*wild 1/1") as caught:
        gen.generate(
            "a red circle", model=str(tiny_sd1.single_file), loras=(LoraRequest(str(lora)),),
            output_dir=str(out), **FAST,
        )  # fmt: skip
    assert "broken model file (sd1-tiny" in str(caught.value)
    assert not out.exists() or not any(out.iterdir())
    after = gen.generate("a red circle", model=str(tiny_sd1.single_file), save=False, **FAST)
    assert np.asarray(after.images[0], dtype=np.int16).std() > 1  # the LoRA left with the failed run


def test_a_vae_that_decodes_to_nan_is_refused(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_decode = AutoencoderKL.decode

    def nan_decode(self: AutoencoderKL, *args: object, **kwargs: object) -> object:
        (sample,) = real_decode(self, *args, **kwargs)
        return (torch.full_like(sample, float("nan")),)

    monkeypatch.setattr(AutoencoderKL, "decode", nan_decode)
    out = tmp_path / "out"
    with pytest.raises(GenerationError, match="decoded image came out as NaN"):
        gen.generate("a red circle", model=str(tiny_sd1.single_file), output_dir=str(out), **FAST)
    assert not out.exists() or not any(out.iterdir())
