"""controlnet_aux detectors really run: seeded random weights at the real shapes, local folders only."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_lib.diffusion.engine.annotators import ANNOTATORS, annotate, detector_class
from ml_lib.diffusion.engine.control import control_image
from ml_lib.diffusion.errors import AnnotatorUnavailableError, ConfigError, ModelUnreadableError
from ml_lib.diffusion.plan import ControlUse, ImageRef


def _importable(name: str) -> bool:
    try:
        detector_class(name)
    except AnnotatorUnavailableError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _importable("lineart"),
    reason='controlnet_aux is not installed (pip install "ml-lib[annotators]", or --no-deps controlnet-aux)',
)


def picture(seed: int, width: int = 80, height: int = 48) -> Image.Image:
    """Blocks of colour (edges for the detectors to respond to)."""
    cells = np.random.default_rng(seed).integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((width, height), Image.Resampling.NEAREST)


@pytest.fixture(scope="module")
def lineart_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ml_lib.diffusion.testing.tiny_annotators import write_tiny_annotator

    dirs = {key: tmp_path_factory.mktemp(f"lineart-{key}") for key in ("seed0", "seed0-again", "seed1")}
    for key, folder in dirs.items():
        write_tiny_annotator("lineart", folder, seed=1 if key == "seed1" else 0)
    return dirs


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection or Hub download fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name, module in list(sys.modules.items()):
        ours = name.startswith("controlnet_aux") or name == "huggingface_hub"
        if ours and module is not None and hasattr(module, "hf_hub_download"):
            monkeypatch.setattr(module, "hf_hub_download", refuse)


def test_lineart_runs_the_network(lineart_dirs: dict[str, Path], offline: None) -> None:
    first = annotate("lineart", picture(0), lineart_dirs["seed0"], detect_resolution=64)
    assert first.size == (80, 48) and first.mode == "RGB"
    pixels = np.asarray(first, dtype=np.int16)
    assert pixels.std() > 1.0  # a real map, not a constant
    again = annotate("lineart", picture(0), lineart_dirs["seed0"], detect_resolution=64)
    same_seed = annotate("lineart", picture(0), lineart_dirs["seed0-again"], detect_resolution=64)
    assert np.array_equal(pixels, np.asarray(again)) and np.array_equal(pixels, np.asarray(same_seed))
    other_weights = annotate("lineart", picture(0), lineart_dirs["seed1"], detect_resolution=64)
    other_input = annotate("lineart", picture(1), lineart_dirs["seed0"], detect_resolution=64)
    assert np.abs(pixels - np.asarray(other_weights, dtype=np.int16)).mean() > 1.0
    assert np.abs(pixels - np.asarray(other_input, dtype=np.int16)).mean() > 1.0
    coarse = annotate("lineart", picture(0), lineart_dirs["seed0"], detect_resolution=64, coarse=True)
    assert not np.array_equal(pixels, np.asarray(coarse))  # sk_model2.pth is a different network


def test_control_image_passes_the_folder_through(lineart_dirs: dict[str, Path], offline: None) -> None:
    unit = ControlUse(model="cn", image=ImageRef("x.png", "0" * 64, 80, 48), control_type="lineart")
    out = control_image(unit, picture(2), 64, 48, annotator_dir=lineart_dirs["seed0"])
    assert out.size == (64, 48)
    with pytest.raises(AnnotatorUnavailableError, match="ML_DIFFUSION_ANNOTATORS"):
        control_image(unit, picture(2), 64, 48)


@pytest.mark.parametrize("name", ["pidinet", "mlsd", "hed"])
def test_other_detectors_load_and_run(name: str, tmp_path: Path, offline: None) -> None:
    from ml_lib.diffusion.testing.tiny_annotators import write_tiny_annotator

    files = write_tiny_annotator(name, tmp_path, seed=0)
    assert [f.name for f in files] == list(ANNOTATORS[name].files)
    out = annotate(name, picture(3, 72, 40), tmp_path, detect_resolution=64)
    assert out.size == (72, 40) and out.mode == "RGB"
    assert np.array_equal(
        np.asarray(out), np.asarray(annotate(name, picture(3, 72, 40), tmp_path, detect_resolution=64))
    )


def test_damaged_weights_are_unreadable(tmp_path: Path) -> None:
    for filename in ANNOTATORS["lineart"].files:
        (tmp_path / filename).write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnreadableError, match=r"sk_model\.pth, sk_model2\.pth"):
        annotate("lineart", picture(0), tmp_path)


class _Payload:
    ran: bool = False

    def __reduce__(self) -> tuple[object, ...]:
        return (_Payload._run, ())

    @staticmethod
    def _run() -> None:
        _Payload.ran = True


def test_weight_files_are_never_unpickled_with_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.save({"state_dict": _Payload()}, tmp_path / "table5_pidinet.pth")
    with pytest.raises(ModelUnreadableError, match="table5_pidinet"):
        annotate("pidinet", picture(0), tmp_path)
    assert not _Payload.ran
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(ConfigError, match="weights-only"):
        annotate("pidinet", picture(0), tmp_path)
    assert not _Payload.ran


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
@pytest.mark.filterwarnings("ignore:Please import `gaussian_filter`:DeprecationWarning")  # controlnet_aux's
@pytest.mark.parametrize("name", ["depth", "openpose", "normal"])
def test_torchvision_detectors_name_the_missing_module(name: str, tmp_path: Path) -> None:
    for filename in ANNOTATORS[name].files:
        (tmp_path / filename).write_bytes(b"weights")
    with pytest.raises(AnnotatorUnavailableError, match="imports 'torchvision'") as info:
        annotate(name, picture(0), tmp_path)
    assert info.value.missing == ("torchvision",)
