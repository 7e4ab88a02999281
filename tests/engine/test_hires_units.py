"""The hires fix with ControlNet and IP-Adapter units (A1111 with its ControlNet extension runs the second
pass controlled too, the control image resized to the hires size), on tiny SD1 pipelines.

What the ControlNet and the UNet receive is captured at their forward calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.request import ControlRequest, IPAdapterRequest
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_controlnet, write_tiny_ip_adapter

# 32x32 first pass (16x16 latents), "Latent" upscale x2 to 64x64 (32x32 latents), 2 hires steps
FAST: dict[str, Any] = dict(
    width=32, height=32, steps=3, cfg_scale=5.0, sampler="Euler", seed=6, save=False,
    hires_scale=2.0, hires_steps=2, hires_denoise=0.6,
)  # fmt: skip


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageGenerator]:
    with ImageGenerator(Settings(home=tmp_path_factory.mktemp("home")), device="cpu") as g:
        yield g


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    pipe = tiny_sd1_components()
    return {
        "cn": write_tiny_controlnet(pipe, root / "cn", seed=1),
        "ip": write_tiny_ip_adapter(pipe, root / "ip", seed=3),
    }


def control_map() -> Image.Image:
    """A 64x64 control map: the hires size, so the second pass must see it unchanged."""
    image = Image.new("RGB", (64, 64), (0, 0, 0))
    ImageDraw.Draw(image).rectangle((10, 20, 40, 50), fill=(255, 255, 255))
    ImageDraw.Draw(image).line((0, 63, 63, 0), fill=(255, 0, 0), width=3)
    return image


class Forwards:
    """Arguments of every forward of one module class while active (its ``forward`` wrapped)."""

    def __init__(self, cls: type[torch.nn.Module], monkeypatch: pytest.MonkeyPatch) -> None:
        self.cls, self.monkeypatch = cls, monkeypatch
        self.calls: list[dict[str, Any]] = []

    def __enter__(self) -> Forwards:
        original = self.cls.forward

        def forward(module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
            self.calls.append({"sample": args[0] if args else kwargs["sample"], **kwargs})
            return original(module, *args, **kwargs)

        self.monkeypatch.setattr(self.cls, "forward", forward)
        return self

    def __exit__(self, *exc: object) -> None:
        self.monkeypatch.undo()


def test_the_hires_pass_is_controlled_with_the_map_at_its_size(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, adapters: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import ControlNetModel

    model = str(tiny_sd1.single_file)
    unit = ControlRequest(str(adapters["cn"]), control_map(), "none", 1.0)
    with Forwards(ControlNetModel, monkeypatch) as control:
        result = gen.generate("a ball", model=model, controls=(unit,), **FAST)
    assert result.images[0].size == (64, 64)
    sizes = [tuple(c["controlnet_cond"].shape[-2:]) for c in control.calls]
    assert sizes == [(32, 32)] * 3 + [(64, 64)] * 2  # 3 first-pass calls, then the 2 hires steps
    exact = torch.from_numpy(np.asarray(control_map(), dtype=np.float32) / 255.0).permute(2, 0, 1)
    for call in control.calls[3:]:  # [uncond, cond] rows, each the map itself
        cond = call["controlnet_cond"]
        assert cond.shape[0] == 2 and torch.allclose(cond[1], exact, atol=1e-6)
        assert call["sample"].shape[-2:] == (32, 32)
    plain = gen.generate("a ball", model=model, **FAST)
    assert np.abs(np.asarray(plain.images[0], np.int16) - np.asarray(result.images[0], np.int16)).mean() > 0.5
    zero = gen.generate(
        "a ball",
        model=model,
        controls=(ControlRequest(str(adapters["cn"]), control_map(), "none", 0.0),),
        **FAST,
    )  # weight 0: both passes as without the unit
    assert np.array_equal(np.asarray(zero.images[0]), np.asarray(plain.images[0]))


def test_the_hires_pass_keeps_the_ip_adapter(
    gen: ImageGenerator, tiny_sd1: TinyModelFiles, adapters: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import UNet2DConditionModel

    red = Image.new("RGB", (32, 32), (220, 20, 20))
    unit = IPAdapterRequest(str(adapters["ip"]), red, "ip-adapter_tiny.safetensors", 1.0)
    with Forwards(UNet2DConditionModel, monkeypatch) as unet:
        gen.generate("a ball", model=str(tiny_sd1.single_file), ip_adapters=(unit,), **FAST)
    assert [tuple(c["sample"].shape[-2:]) for c in unet.calls] == [(16, 16)] * 3 + [(32, 32)] * 2
    embeds = [c["added_cond_kwargs"]["image_embeds"][0] for c in unet.calls]
    assert all(torch.equal(e, embeds[0]) for e in embeds)  # the same reference in both passes
