"""Pinned plans and images: refactors of the hallway (resolve → plan → execute) must not change them.

Each case plans and generates on the tiny seeded fixtures (one thread, so the arithmetic is the same
on every run) and compares the plan JSON (machine paths replaced by placeholders) with ``pinned.json`` and
the pixels with ``pinned/<case>.png``. ``ML_DIFFUSION_REPIN=1 pytest tests/engine/test_pinned.py`` rewrites
both — only for an intended change, stated in the commit.

Pixels are compared within ``PIXEL_TOLERANCE``, not by hash: the same code on another CPU (oneDNN picks
kernels by instruction set: AVX2, AVX-512, AMX) sums in another order, so the last bits of the floats differ
and a pixel may round one or two levels the other way. A changed seed, sampler, weight or LoRA moves pixels
by tens of levels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ml_lib.diffusion import ImageGenerator, Settings
from ml_lib.diffusion.request import ControlRequest, GenerationRequest, LoraRequest
from ml_lib.diffusion.testing.tiny import TinyModelFiles, tiny_sd1_components
from ml_lib.diffusion.testing.tiny_adapters import write_tiny_controlnet, write_tiny_lora

PINNED = Path(__file__).with_name("pinned.json")
PINNED_PIXELS = Path(__file__).with_name("pinned")
#: Largest difference of any pixel channel (0-255) and mean absolute difference allowed across CPUs (measured:
#: 1 and 0.0002 between AVX-512, AVX2 and SSE4.1 kernels, `ONEDNN_MAX_CPU_ISA`).
PIXEL_TOLERANCE = (2, 0.05)
FAST = dict(width=64, height=64, steps=3, cfg_scale=5.0, sampler="Euler", seed=11)


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pinned-home")


@pytest.fixture(scope="module")
def gen(home: Path, single_thread: None) -> Iterator[ImageGenerator]:
    with ImageGenerator(Settings(home=home, model_roots=()), device="cpu", pool_size=2) as g:
        yield g


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pinned-adapters")
    pipe = tiny_sd1_components()
    return {
        "lora": write_tiny_lora(pipe, root / "style.safetensors", seed=5),
        "cn": write_tiny_controlnet(pipe, root / "cn", seed=1),
    }


def _scene() -> Image.Image:
    image = Image.new("RGB", (64, 64), (30, 60, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(230, 40, 40))
    return image


def _cases(tiny: TinyModelFiles, adapters: dict[str, Path]) -> dict[str, dict[str, object]]:
    model = str(tiny.single_file)
    return {
        "txt2img": dict(prompt="a red (circle:1.2), [blurry]", model=model, **FAST),
        "demo": dict(prompt="a red circle on the left, light blue background", seed=3, steps=4),
        "lora": dict(
            prompt="a castle", model=model, loras=(LoraRequest(str(adapters["lora"]), 0.8),), **FAST
        ),
        "img2img": dict(prompt="a ball", model=model, init_image=_scene(), strength=0.6, **FAST),
        "controlnet": dict(
            prompt="a ball",
            model=model,
            controls=(ControlRequest(str(adapters["cn"]), _scene(), "none", 0.9),),
            **FAST,
        ),
    }


def _normalise(text: str, replacements: dict[str, str]) -> object:
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    data = json.loads(text)
    # safetensors writes header metadata in a per-process random order, so the tiny single file's
    # bytes (and hash) differ between runs while its tensors do not.
    data["model"]["hash"] = None
    for decision in data["decisions"]:
        if decision["field"] == "device":
            decision["reason"] = "<DEVICE>"  # names this machine's CPU
        if decision["field"] == "memory":
            decision["reason"] = "<MEMORY>"  # names the RAM available now
    if "memory" in data:
        data["memory"]["budget_bytes"] = "<RAM>"
    return data


def test_plans_and_images_match_the_pinned_ones(
    gen: ImageGenerator, home: Path, tiny_sd1: TinyModelFiles, adapters: dict[str, Path]
) -> None:
    import ml_lib.diffusion

    package = str(Path(ml_lib.diffusion.__file__).parent)
    replacements = {
        str(home): "<HOME>",
        str(tiny_sd1.single_file.parent): "<TINY>",
        str(adapters["lora"].parent): "<ADAPTERS>",
        package: "<PACKAGE>",
    }
    got: dict[str, object] = {}
    images: dict[str, np.ndarray] = {}
    for name, kwargs in _cases(tiny_sd1, adapters).items():
        result = gen.generate(GenerationRequest(**kwargs), save=False)  # type: ignore[arg-type]
        images[name] = np.asarray(result.images[0].convert("RGB"), dtype=np.int16)
        got[name] = {"plan": _normalise(result.plan.to_json(), replacements)}
    if os.environ.get("ML_DIFFUSION_REPIN") == "1":
        PINNED.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        PINNED_PIXELS.mkdir(exist_ok=True)
        for name, pixels in images.items():
            Image.fromarray(pixels.astype(np.uint8)).save(PINNED_PIXELS / f"{name}.png")
    pinned = json.loads(PINNED.read_text())
    for name in got:
        assert got[name]["plan"] == pinned[name]["plan"], name  # type: ignore[index]
    for name, pixels in images.items():
        want = np.asarray(Image.open(PINNED_PIXELS / f"{name}.png").convert("RGB"), dtype=np.int16)
        diff = np.abs(pixels - want)
        assert diff.max() <= PIXEL_TOLERANCE[0] and diff.mean() <= PIXEL_TOLERANCE[1], (
            f"{name}: pixels differ by up to {diff.max()} (mean {diff.mean():.3f})"
        )
