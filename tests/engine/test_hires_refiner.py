"""The SDXL refiner with the hires fix, as A1111 runs it by default (the refiner in the second pass): the
first pass is the base's alone, the hires pass runs the base down to the switch point and the refiner
from there, on tiny SDXL base and refiner pipelines. UNet calls are recorded (cross-attention width tells
base 96 from refiner 64; latent size and timestep)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sdxl_refiner_components

FAST: dict[str, Any] = dict(
    width=32, height=32, steps=6, cfg_scale=5.0, sampler="Euler", seed=4, refiner="auto",
    hires_scale=2.0, hires_steps=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageGenerator]:
    folder = tmp_path_factory.mktemp("refiners") / "sdxl-refiner-tiny"
    tiny_sdxl_refiner_components(1).save_pretrained(folder, safe_serialization=True)
    settings = Settings(home=tmp_path_factory.mktemp("home"), model_roots=(folder.parent,))
    with ImageGenerator(settings, device="cpu") as gen:
        gen.catalog().scan()
        yield gen


class Calls:
    """(cross-attention width, latent height, timestep) of every UNet forward while active."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, float]] = []

    def __enter__(self) -> Calls:
        from diffusers import UNet2DConditionModel

        def hook(module: torch.nn.Module, args: tuple[Any, ...], _out: object) -> None:
            if isinstance(module, UNet2DConditionModel):
                width = int(module.config.cross_attention_dim)
                self.calls.append((width, int(args[0].shape[2]), float(args[1])))

        self._handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def test_the_refiner_takes_over_inside_the_hires_pass(
    generator: ImageGenerator, tiny_sdxl: TinyModelFiles
) -> None:
    plan = generator.plan("a lighthouse", model=str(tiny_sdxl.single_file), refiner_switch=0.8,
                          hires_denoise=0.5, **FAST)  # fmt: skip
    assert plan.hires is not None and plan.refiner is not None
    with Calls() as unet:
        result = generator.execute(plan, save=False)
    first, second = unet.calls[:6], unet.calls[6:]
    assert [w for w, *_ in first] == [96] * 6  # the whole first pass on the base: no hand-off there
    size = second[0][1]
    assert size == 2 * first[0][1] and all(h == size for _, h, _ in second)
    # Hires: the last 4 steps of an 8-step schedule (4 / 0.5); Euler's timesteps 428, 285 stay with the
    # base (>= round(1000 x (1 - 0.8)) = 200), 142 and 0 go to the refiner.
    assert [w for w, *_ in second] == [96, 96, 64, 64]
    steps = torch.tensor([t for *_, t in second])
    torch.testing.assert_close(steps, torch.tensor([428.1429, 285.4286, 142.7143, 0.0]), atol=1e-3, rtol=0)
    assert result.images[0].size == (64, 64)


def test_a_hires_pass_starting_past_the_switch_is_refused(
    generator: ImageGenerator, tiny_sdxl: TinyModelFiles
) -> None:
    plan = generator.plan("a lighthouse", model=str(tiny_sdxl.single_file), refiner_switch=0.8,
                          hires_denoise=0.15, **FAST)  # fmt: skip
    with Calls() as unet, pytest.raises(RequestError, match=r"--hires-denoise above 0\.2"):
        generator.execute(plan, save=False)
    assert unet.calls == []  # refused before anything ran


def test_with_a_hires_checkpoint_the_hires_pass_runs_it_then_the_refiner(
    generator: ImageGenerator, tiny_sdxl: TinyModelFiles, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from ml_lib.diffusion.testing.tiny import write_tiny_model

    other = write_tiny_model("sdxl", tmp_path_factory.mktemp("sdxl-b"), seed=7)
    modules: list[int] = []

    def hook(module: torch.nn.Module, _args: tuple[Any, ...], _out: object) -> None:
        from diffusers import UNet2DConditionModel

        if isinstance(module, UNet2DConditionModel):
            modules.append(id(module))

    kwargs = dict(refiner_switch=0.8, hires_denoise=0.5, **FAST)
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        with Calls() as unet:
            result = generator.generate("a lighthouse", model=str(tiny_sdxl.single_file),
                                        hires_checkpoint=str(other.single_file), save=False, **kwargs)  # fmt: skip
    finally:
        handle.remove()
    assert [w for w, *_ in unet.calls] == [96] * 6 + [96, 96, 64, 64]  # the same hand-off as without it
    first, hires, refiner = set(modules[:6]), set(modules[6:8]), set(modules[8:])
    assert len(first) == len(hires) == len(refiner) == 1 and len(first | hires | refiner) == 3
    plain = generator.generate("a lighthouse", model=str(tiny_sdxl.single_file), save=False, **kwargs)
    diff = torch.tensor(list(result.images[0].tobytes())) - torch.tensor(list(plain.images[0].tobytes()))
    assert diff.abs().float().mean() > 1  # the hires checkpoint changed the image
