"""Family detection from safetensors headers only, and header parsing of malformed files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family, PredictionType
from ml_lib.diffusion.catalog.header import read_header
from ml_lib.diffusion.catalog.probe import detect_family, probe_diffusers_folder
from ml_lib.diffusion.errors import ModelNotFoundError, ModelUnreadableError

from ._safetensors import FLUX, LORA, REFINER, SD1, SD2, SD3, SDXL, UNET_K, write_fake_safetensors


@pytest.mark.parametrize(
    ("keys", "family", "prediction"),
    [
        (SD1, Family.SD1, PredictionType.EPSILON),
        (SDXL, Family.SDXL, PredictionType.EPSILON),
        (REFINER, Family.SDXL_REFINER, PredictionType.EPSILON),
        (SD3, Family.SD3, PredictionType.EPSILON),
        (FLUX, Family.FLUX, PredictionType.EPSILON),
    ],
)
def test_families(tmp_path: Path, keys, family: Family, prediction: PredictionType) -> None:
    guess = detect_family(read_header(write_fake_safetensors(tmp_path / "m.safetensors", keys)))
    assert guess.family is family and guess.prediction_type is prediction
    assert guess.standard


def test_header_reads_no_tensor_data(tmp_path: Path) -> None:
    path = write_fake_safetensors(tmp_path / "big.safetensors", SDXL)
    header = read_header(path)
    assert header.size > 200_000_000  # the declared data of the fake tensors
    assert path.stat().st_blocks * 512 < 1_000_000  # sparse: nothing was written or read
    assert header.shape("model.diffusion_model.label_emb.0.0.weight") == (1280, 2816)


def test_sd2_prediction_markers(tmp_path: Path) -> None:
    v = detect_family(read_header(write_fake_safetensors(tmp_path / "v2-1_768.safetensors", SD2)))
    assert (
        v.family is Family.SD2 and v.prediction_type is PredictionType.V_PREDICTION and "assumed" in v.reason
    )
    base = detect_family(read_header(write_fake_safetensors(tmp_path / "v2-1_512-base.safetensors", SD2)))
    assert base.prediction_type is PredictionType.EPSILON
    yaml_ckpt = write_fake_safetensors(tmp_path / "custom.safetensors", SD2)
    (tmp_path / "custom.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert detect_family(read_header(yaml_ckpt)).prediction_type is PredictionType.V_PREDICTION
    (tmp_path / "custom.yaml").write_text("model:\n  params:\n    linear_start: 0.00085\n")
    assert detect_family(read_header(yaml_ckpt)).prediction_type is PredictionType.EPSILON


def test_vpred_marker_and_modelspec(tmp_path: Path) -> None:
    vpred = write_fake_safetensors(tmp_path / "noob.safetensors", {**SDXL, "v_pred": ("F32", (0,))})
    assert detect_family(read_header(vpred)).prediction_type is PredictionType.V_PREDICTION
    spec = write_fake_safetensors(tmp_path / "s.safetensors", SD2, {"modelspec.prediction_type": "epsilon"})
    assert detect_family(read_header(spec)).prediction_type is PredictionType.EPSILON


def test_non_standard_shapes_are_flagged(tmp_path: Path) -> None:
    tiny = {**SD1, UNET_K: ("F32", (32, 32))}
    guess = detect_family(read_header(write_fake_safetensors(tmp_path / "t.safetensors", tiny)))
    assert guess.family is Family.SD1 and not guess.standard


def test_lora_is_not_a_checkpoint(tmp_path: Path) -> None:
    guess = detect_family(read_header(write_fake_safetensors(tmp_path / "l.safetensors", LORA)))
    assert guess.family is Family.UNKNOWN and "not a full checkpoint" in guess.reason


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 1 << 40), "over the 100 MB limit"),
        (struct.pack("<Q", 500) + b"{}", "past the end"),
        (struct.pack("<Q", 4) + b"\xff\xfe{}", "not valid UTF-8 JSON"),
        (struct.pack("<Q", 5) + b"[1,2]", "not a JSON object"),
        (struct.pack("<Q", 17) + b'{"a":1,"a":2}    ', "duplicate key"),
        (struct.pack("<Q", 30) + b'{"__metadata__": {"x": 1}}    ', "strings to strings"),
    ],
)
def test_malformed_headers(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(ModelUnreadableError, match=message):
        read_header(_raw(tmp_path / "bad.safetensors", data))


def test_offsets_past_eof(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path = _raw(tmp_path / "trunc.safetensors", struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(ModelUnreadableError, match="past the end"):
        read_header(path)


def test_missing_and_special_files(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        read_header(tmp_path / "nope.safetensors")
    with pytest.raises(ModelUnreadableError, match="not a regular file"):
        read_header(tmp_path)


def test_diffusers_folder_probe(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 1024}))
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"prediction_type": "v_prediction"})
    )
    guess = probe_diffusers_folder(tmp_path)
    assert guess.family is Family.SD2 and guess.prediction_type is PredictionType.V_PREDICTION
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLImg2ImgPipeline", "requires_aesthetics_score": True})
    )
    assert probe_diffusers_folder(tmp_path).family is Family.SDXL_REFINER
