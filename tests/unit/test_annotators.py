"""Model-based preprocessors without torch: what is missing is named, a detector gets the local folder."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml_lib.diffusion.engine.annotators import ANNOTATORS, annotate
from ml_lib.diffusion.errors import AnnotatorUnavailableError, ConfigError, MlDiffusionError, RequestError
from ml_lib.diffusion.imaging.preprocess import PREPROCESSORS, preprocess
from ml_lib.diffusion.settings import Settings


def image(width: int = 40, height: int = 24) -> Image.Image:
    return Image.new("RGB", (width, height), (90, 120, 30))


def test_every_model_based_preprocessor_has_a_detector() -> None:
    assert set(ANNOTATORS) == {name for name, p in PREPROCESSORS.items() if p.needs_weights}
    assert issubclass(AnnotatorUnavailableError, ConfigError)
    assert issubclass(AnnotatorUnavailableError, MlDiffusionError)
    with pytest.raises(RequestError, match="Unknown model-based preprocessor"):
        annotate("canny", image(), Path("."))


def test_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for filename in ANNOTATORS["hed"].files:
        (tmp_path / filename).write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "controlnet_aux", None)  # not installed
    with pytest.raises(AnnotatorUnavailableError, match=r'pip install "ml-lib\[annotators\]"') as info:
        annotate("hed", image(), tmp_path)
    assert info.value.missing == ("controlnet-aux",)
    assert "--no-deps controlnet-aux" in str(info.value)  # the way in without torchvision


def test_missing_weights_name_each_file_and_the_folder(tmp_path: Path) -> None:
    (tmp_path / "sk_model.pth").write_bytes(b"weights")  # the coarse model sk_model2.pth is absent
    with pytest.raises(AnnotatorUnavailableError) as info:
        annotate("lineart", image(), tmp_path)
    message = str(info.value)
    assert f"sk_model2.pth missing in {tmp_path}" in message
    assert "sk_model.pth," not in message  # only what is really missing
    assert str(tmp_path / "sk_model2.pth") in info.value.missing
    with pytest.raises(AnnotatorUnavailableError, match=r"dpt_hybrid-midas-501f0c75\.pt missing in"):
        preprocess("depth", image(), annotator_dir=tmp_path / "nowhere")


def test_no_folder_points_at_the_setting() -> None:
    with pytest.raises(
        AnnotatorUnavailableError, match=r"ML_DIFFUSION_ANNOTATORS.*sk_model\.pth, sk_model2\.pth"
    ):
        annotate("lineart", image(), None)


def test_a_detector_gets_the_local_folder_and_its_output_the_input_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    class FakeMidas:
        @classmethod
        def from_pretrained(cls, path: str) -> FakeMidas:
            seen["path"] = path
            return cls()

        def __call__(self, picture: Image.Image, **params: object) -> np.ndarray:
            seen["params"] = params
            return np.full((64, 128), 7, dtype=np.uint8)  # controlnet_aux rounds sizes to 64

    package = types.ModuleType("controlnet_aux")
    package.__path__ = []  # type: ignore[attr-defined]
    midas = types.ModuleType("controlnet_aux.midas")
    midas.MidasDetector = FakeMidas  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "controlnet_aux", package)
    monkeypatch.setitem(sys.modules, "controlnet_aux.midas", midas)
    (tmp_path / "dpt_hybrid-midas-501f0c75.pt").write_bytes(b"weights")

    out = preprocess("depth", image(), annotator_dir=tmp_path, detect_resolution=256)
    assert seen == {"path": str(tmp_path), "params": {"detect_resolution": 256, "image_resolution": 64}}
    assert out.size == (40, 24) and out.mode == "RGB" and out.getpixel((0, 0)) == (7, 7, 7)
    annotate("depth", image(300, 200), tmp_path)  # "pixel perfect": detect at the short side
    assert seen["params"] == {"detect_resolution": 200, "image_resolution": 200}


def test_a_missing_detector_module_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("controlnet_aux")
    package.__path__ = []  # type: ignore[attr-defined]  # a package without the normalbae module
    monkeypatch.setitem(sys.modules, "controlnet_aux", package)
    (tmp_path / "scannet.pt").write_bytes(b"weights")
    with pytest.raises(
        AnnotatorUnavailableError, match=r"NormalBaeDetector imports 'controlnet_aux\.normalbae'"
    ):
        annotate("normal", image(), tmp_path)


def test_settings_annotator_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(home=tmp_path).annotator_dir == tmp_path / "annotators"
    assert Settings(home=tmp_path, annotators=tmp_path / "a").annotator_dir == tmp_path / "a"
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path))
    monkeypatch.delenv("ML_DIFFUSION_ANNOTATORS", raising=False)
    assert Settings.from_env().annotator_dir == tmp_path / "annotators"
    monkeypatch.setenv("ML_DIFFUSION_ANNOTATORS", str(tmp_path / "weights"))
    assert Settings.from_env().annotator_dir == tmp_path / "weights"
