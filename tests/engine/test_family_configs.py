"""The shipped weightless config folders build the published architectures (meta device, no weights)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import accelerate
import diffusers
import pytest
import torch
import transformers
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

CONFIGS = Path(str(files("ml_lib.diffusion").joinpath("assets/configs")))

# Published sizes; the SDXL refiner UNet is not quoted anywhere official and was derived independently from
# its architecture (384/768/1536/1536 channels, 4-deep transformers in the middle two levels and the mid
# block, cross-attention 1280, added-embedding input 2560 = 1280 pooled + 5 x 256 size/crop/score features).
CLIP_L_TEXT = 123_060_480  # CLIP ViT-L/14 text tower, 12 layers x 768
OPENCLIP_H_TEXT_23 = 340_387_840  # OpenCLIP ViT-H/14 text tower cut to 23 of 24 layers, no projection
OPENCLIP_BIGG_TEXT_PROJ = 694_659_840  # OpenCLIP ViT-bigG/14 text tower, 32 x 1280, plus 1280x1280 projection
VAE_KL_F8 = 83_653_863  # the same KL-f8 autoencoder shape in every family


@dataclass(frozen=True)
class Family:
    folder: str
    pipeline: str
    unet: int
    text_encoder: int | None
    text_encoder_2: int | None
    prediction_type: str
    scaling_factor: float


SD, XL, XL_IMG2IMG = (
    "StableDiffusionPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusionXLImg2ImgPipeline",
)
FAMILIES = [
    Family("sd1", SD, 859_520_964, CLIP_L_TEXT, None, "epsilon", 0.18215),
    Family("sd2", SD, 865_910_724, OPENCLIP_H_TEXT_23, None, "epsilon", 0.18215),
    Family("sd2-v", SD, 865_910_724, OPENCLIP_H_TEXT_23, None, "v_prediction", 0.18215),
    Family("sdxl", XL, 2_567_463_684, CLIP_L_TEXT, OPENCLIP_BIGG_TEXT_PROJ, "epsilon", 0.13025),
    Family("sdxl-refiner", XL_IMG2IMG, 2_259_526_660, None, OPENCLIP_BIGG_TEXT_PROJ, "epsilon", 0.13025),
]
PARAMS = pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.folder)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_package_data_lists_exactly_the_families() -> None:
    assert CONFIGS.is_dir()
    assert sorted(p.name for p in CONFIGS.iterdir() if p.is_dir()) == sorted(f.folder for f in FAMILIES)
    assert (CONFIGS / "README.md").is_file()


@PARAMS
def test_unet_and_vae_parameter_counts(family: Family) -> None:
    folder = CONFIGS / family.folder
    with accelerate.init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    assert next(unet.parameters()).device.type == "meta"
    assert _count(unet) == family.unet
    assert _count(vae) == VAE_KL_F8
    assert vae.config.scaling_factor == pytest.approx(family.scaling_factor)
    if family.folder.startswith("sdxl"):
        assert vae.config.force_upcast is True
    # SD2.1-768 runs its attention in fp32 upstream; the 512 base does not set it.
    assert bool(unet.config.upcast_attention) is (family.folder == "sd2-v")


@PARAMS
def test_text_encoder_parameter_counts(family: Family) -> None:
    folder = CONFIGS / family.folder
    expected = {"text_encoder": family.text_encoder, "text_encoder_2": family.text_encoder_2}
    for sub, count in expected.items():
        if count is None:
            assert not (folder / sub).exists(), sub
            continue
        config = CLIPTextConfig.from_pretrained(folder / sub)
        cls = CLIPTextModelWithProjection if sub == "text_encoder_2" else CLIPTextModel
        assert config.architectures == [cls.__name__]
        with accelerate.init_empty_weights():
            model = cls(config)
        assert _count(model) == count, sub


@PARAMS
def test_scheduler_loads_as_named(family: Family) -> None:
    folder = CONFIGS / family.folder / "scheduler"
    name = _read(folder / "scheduler_config.json")["_class_name"]
    scheduler = getattr(diffusers, name).from_pretrained(folder, local_files_only=True)
    assert type(scheduler).__name__ == name
    assert scheduler.config.prediction_type == family.prediction_type
    assert (family.prediction_type == "v_prediction") is (family.folder == "sd2-v")


@PARAMS
def test_model_index_names_real_classes(family: Family) -> None:
    index = _read(CONFIGS / family.folder / "model_index.json")
    assert index["_class_name"] == family.pipeline
    assert hasattr(diffusers, family.pipeline)
    for component, value in index.items():
        if component.startswith("_") or not isinstance(value, list):
            continue
        library, class_name = value
        if library is None:
            assert class_name is None, component
            continue
        if library not in ("diffusers", "transformers"):  # e.g. diffusers' own "stable_diffusion" module
            library = f"diffusers.pipelines.{library}"
        assert hasattr(importlib.import_module(library), class_name), (component, library, class_name)
        if component in ("unet", "vae", "scheduler"):
            name = "scheduler_config.json" if component == "scheduler" else "config.json"
            assert _read(CONFIGS / family.folder / component / name)["_class_name"] == class_name
    pipeline = getattr(diffusers, family.pipeline)
    assert pipeline.load_config(CONFIGS / family.folder)["_class_name"] == family.pipeline


@PARAMS
def test_pipeline_flags(family: Family) -> None:
    index = _read(CONFIGS / family.folder / "model_index.json")
    if family.pipeline == SD:
        assert index["safety_checker"] == [None, None]
        assert index["feature_extractor"] == [None, None]
        assert index["requires_safety_checker"] is False
        assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    if family.folder == "sdxl-refiner":
        assert index["requires_aesthetics_score"] is True
        assert index["force_zeros_for_empty_prompt"] is False
        assert "text_encoder" not in index and "tokenizer" not in index
    if family.folder == "sdxl":
        assert index["force_zeros_for_empty_prompt"] is True


def test_transformers_classes_exist() -> None:
    for name in ("CLIPTextModel", "CLIPTextModelWithProjection", "CLIPTokenizer"):
        assert hasattr(transformers, name), name
