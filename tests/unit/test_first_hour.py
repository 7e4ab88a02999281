"""Issue 12, pure parts: size suggestions within the limits, the text encoder's layer count."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ml_lib.diffusion._assets import asset_path
from ml_lib.diffusion.errors import RequestError
from ml_lib.diffusion.plan import ModelFormat, ModelRef, ResolvedRequest
from ml_lib.diffusion.planning.checks import check_size
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.resolve.checkpoint import clip_layers
from ml_lib.diffusion.settings import Limits, Settings


def _suggested(message: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", message.split("; use ")[1])]


@pytest.mark.parametrize(
    ("width", "height", "limits"),
    [
        (99999, 99999, Limits()),
        (4095, 64, Limits()),
        (1023, 64, Limits(max_side=1020)),
        (2048, 2048, Limits(max_side=2048, max_pixels=1024 * 1024)),
        (2048, 1024, Limits(max_side=2048, max_pixels=1000 * 1000)),
    ],
)
def test_every_suggested_size_passes_the_check(width: int, height: int, limits: Limits) -> None:
    with pytest.raises(RequestError) as caught:
        check_size(width, height, limits)
    numbers = _suggested(str(caught.value))
    assert numbers
    if re.search(r"\d+x\d+", str(caught.value).split("; use ")[1]):  # a whole size, e.g. 1408x704
        check_size(numbers[0], numbers[1], limits)
        assert numbers[0] / numbers[1] == pytest.approx(width / height, rel=0.02)
    else:
        for n in numbers:
            check_size(n, 8, limits)


def _ref(folder: Path, fmt: ModelFormat = ModelFormat.DIFFUSERS) -> ModelRef:
    if fmt is ModelFormat.SINGLE_FILE:
        return ModelRef("/m/x.safetensors", fmt, "sd1", config_dir=str(folder))
    return ModelRef(str(folder), fmt, "sd1")


def test_clip_layers_read_from_the_config_folders() -> None:
    configs = asset_path("configs")
    assert clip_layers(_ref(configs / "sd1", ModelFormat.SINGLE_FILE)) == 12
    assert clip_layers(_ref(configs / "sd2", ModelFormat.SINGLE_FILE)) == 23
    assert clip_layers(_ref(configs / "sdxl", ModelFormat.SINGLE_FILE)) == 12  # the fewer of 12 and 32
    assert clip_layers(_ref(asset_path("demo"))) == 3
    assert clip_layers(ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1")) is None


def test_clip_layers_of_a_broken_config_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "text_encoder").mkdir()
    (tmp_path / "text_encoder" / "config.json").write_text("{not json", encoding="utf-8")
    assert clip_layers(_ref(tmp_path)) is None
    (tmp_path / "text_encoder" / "config.json").write_text(json.dumps({"num_hidden_layers": "3"}))
    assert clip_layers(_ref(tmp_path)) is None


def test_planner_refuses_clip_skip_over_the_layers(tmp_path: Path) -> None:
    planner = Planner(Settings(home=tmp_path), seed_source=lambda: 1)
    cpu = DeviceInfo("cpu", "test CPU")
    resolved = ResolvedRequest(ModelRef("/m", ModelFormat.DIFFUSERS, "sd1"), clip_layers=2)
    assert planner.plan(GenerationRequest("x", clip_skip=2), resolved, None, cpu).clip_skip == 2
    with pytest.raises(RequestError, match=r"clip skip 3 is more than .* \(2\); use --clip-skip 2 or less"):
        planner.plan(GenerationRequest("x", clip_skip=3), resolved, None, cpu)


@pytest.mark.parametrize(
    ("reference", "hub"),
    [
        ("stabilityai/stable-diffusion-xl-base-1.0", True),  # the README's example: ".0" is no file suffix
        ("runwayml/stable-diffusion-v1-5", True),
        ("models/dream.safetensors", False),
        ("models/old.ckpt", False),
        ("./cn-canny", False),
    ],
)
def test_hub_ids(reference: str, hub: bool) -> None:
    from ml_lib.diffusion.resolve.checkpoint import is_hub_id

    assert is_hub_id(reference) is hub
