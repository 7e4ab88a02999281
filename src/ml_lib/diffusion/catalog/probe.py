"""Identify a checkpoint's family from its safetensors header, or a diffusers folder from its configs.

Header-only: tensor names and shapes, never tensor data. Matchers are tried in registry order; the
first that recognises the layout wins. ``standard`` tells whether the shapes are those of the
published architecture (so a shipped config folder fits) or an unusual variant that needs its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelUnreadableError
from .families import Family, PredictionType
from .header import SafetensorsHeader, header_of

__all__ = ["FamilyGuess", "detect_family", "probe_diffusers_folder"]

_UNET = "model.diffusion_model."
_CROSS_ATTN_K = _UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
_LABEL_EMB = _UNET + "label_emb.0.0.weight"


@dataclass(frozen=True, slots=True)
class FamilyGuess:
    """What a model is, whether its shapes are the published ones, and why we think so."""

    family: Family
    prediction_type: PredictionType
    standard: bool
    reason: str


Matcher = Callable[[SafetensorsHeader], "FamilyGuess | None"]


def _prediction(
    header: SafetensorsHeader, default: PredictionType, why_default: str
) -> tuple[PredictionType, str]:
    """Prediction type from explicit markers; else ``default``."""
    if "v_pred" in header.tensors:
        return PredictionType.V_PREDICTION, "a 'v_pred' marker key"
    spec = header.metadata.get("modelspec.prediction_type", "").lower()
    if spec:
        v = spec in ("v", "v_prediction", "v-prediction")
        return (PredictionType.V_PREDICTION if v else PredictionType.EPSILON), f"modelspec says {spec!r}"
    arch = header.metadata.get("modelspec.architecture", "").lower()
    if arch.endswith("-v"):
        return PredictionType.V_PREDICTION, f"modelspec architecture {arch!r}"
    yaml = header.path.with_suffix(".yaml")
    if yaml.is_file():
        text = yaml.read_text(encoding="utf-8", errors="replace")
        if re.search(r"parameterization:\s*['\"]?v['\"]?\s*$", text, re.MULTILINE):
            return PredictionType.V_PREDICTION, f"{yaml.name} sets parameterization v"
        return PredictionType.EPSILON, f"{yaml.name} sets no v parameterization"
    return default, why_default


def _sdxl_base(h: SafetensorsHeader) -> FamilyGuess | None:
    if not (h.has_prefix("conditioner.embedders.1.model.") and h.has_prefix(_UNET)):
        return None
    pred, why = _prediction(h, PredictionType.EPSILON, "SDXL default")
    standard = h.shape(_LABEL_EMB) == (1280, 2816)
    return FamilyGuess(
        Family.SDXL, pred, standard, f"CLIP-L + OpenCLIP-bigG text encoders; prediction: {why}"
    )


def _sdxl_refiner(h: SafetensorsHeader) -> FamilyGuess | None:
    if not (h.has_prefix("conditioner.embedders.0.model.") and h.has_prefix(_UNET)):
        return None
    standard = h.shape(_LABEL_EMB) == (1536, 2560)
    return FamilyGuess(
        Family.SDXL_REFINER, PredictionType.EPSILON, standard, "OpenCLIP-bigG text encoder only"
    )


def _sd2(h: SafetensorsHeader) -> FamilyGuess | None:
    if not (h.has_prefix("cond_stage_model.model.") and h.has_prefix(_UNET)):
        return None
    name = h.path.stem.lower()
    if "512" in name or "base" in name:
        default, why = PredictionType.EPSILON, "a '512'/'base' file name (SD2 512 models predict epsilon)"
    else:
        default, why = PredictionType.V_PREDICTION, "assumed v (SD2 768 models); add a .yaml to override"
    pred, reason = _prediction(h, default, why)
    standard = h.shape(_CROSS_ATTN_K) == (320, 1024)
    return FamilyGuess(Family.SD2, pred, standard, f"OpenCLIP-H text encoder; prediction: {reason}")


def _demo(h: SafetensorsHeader) -> FamilyGuess | None:
    if not (h.has_prefix("cond_stage_model.transformer.") and h.shape(_CROSS_ATTN_K) == (64, 128)):
        return None
    return FamilyGuess(
        Family.DEMO, PredictionType.EPSILON, True, "the demo model's shapes (context width 128)"
    )


def _sd1(h: SafetensorsHeader) -> FamilyGuess | None:
    if not (h.has_prefix("cond_stage_model.transformer.") and h.has_prefix(_UNET)):
        return None
    pred, why = _prediction(h, PredictionType.EPSILON, "SD1 default")
    standard = h.shape(_CROSS_ATTN_K) == (320, 768)
    return FamilyGuess(Family.SD1, pred, standard, f"CLIP-L text encoder; prediction: {why}")


def _sd3(h: SafetensorsHeader) -> FamilyGuess | None:
    if h.has_prefix(_UNET + "joint_blocks.") or h.has_prefix("joint_blocks."):
        return FamilyGuess(Family.SD3, PredictionType.EPSILON, True, "MMDiT joint blocks")
    return None


def _flux(h: SafetensorsHeader) -> FamilyGuess | None:
    if h.has_prefix(_UNET + "double_blocks.") or h.has_prefix("double_blocks."):
        return FamilyGuess(Family.FLUX, PredictionType.EPSILON, True, "Flux double-stream blocks")
    return None


#: Ordered registry; more specific layouts first.
MATCHERS: tuple[Matcher, ...] = (_sdxl_base, _sdxl_refiner, _sd2, _demo, _sd1, _sd3, _flux)


def detect_family(header: SafetensorsHeader) -> FamilyGuess:
    """Family of a single-file checkpoint from its header (UNKNOWN with a reason when none matches)."""
    for matcher in MATCHERS:
        guess = matcher(header)
        if guess is not None:
            return guess
    if not header.has_prefix(_UNET):
        reason = "no 'model.diffusion_model.' keys: not a full checkpoint (a LoRA, VAE or UNet alone?)"
    else:
        reason = "a UNet with no text encoder layout we know"
    return FamilyGuess(Family.UNKNOWN, PredictionType.EPSILON, False, reason)


def _json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnreadableError(f"Cannot read {path}: {exc}.") from exc
    if not isinstance(data, dict):
        raise ModelUnreadableError(f"{path} is not a JSON object.")
    return data


#: Marks a model with random weights written by ``ml_lib.diffusion.testing`` (safetensors metadata key;
#: in a diffusers folder, ``_ml_lib_test_model`` in model_index.json, a private key diffusers ignores).
TEST_MARK = "ml_lib.test_model"
TEST_MARK_INDEX_KEY = "_ml_lib_test_model"


def marked_for_tests(path: Path) -> bool:
    """Whether a checkpoint (single file or diffusers folder) carries the test-model mark."""
    if path.is_dir():
        return (
            bool(_json(path / "model_index.json").get(TEST_MARK_INDEX_KEY))
            if (path / "model_index.json").is_file()
            else False
        )
    return bool(header_of(path).metadata.get(TEST_MARK))


def probe_diffusers_folder(folder: Path) -> FamilyGuess:
    """Family of a diffusers folder (or weightless config folder) from model_index.json and configs."""
    index = _json(folder / "model_index.json")
    cls = str(index.get("_class_name", ""))
    pred = PredictionType.EPSILON
    sched = folder / "scheduler" / "scheduler_config.json"
    if sched.is_file() and _json(sched).get("prediction_type") == "v_prediction":
        pred = PredictionType.V_PREDICTION
    if cls.startswith("StableDiffusionXL"):
        no_first_encoder = "text_encoder" in index and index["text_encoder"] in (None, [None, None])
        refiner = index.get("requires_aesthetics_score") is True or no_first_encoder
        family = Family.SDXL_REFINER if refiner else Family.SDXL
        return FamilyGuess(family, pred, True, f"model_index.json names {cls}")
    if cls.startswith("StableDiffusion3"):
        return FamilyGuess(Family.SD3, pred, True, f"model_index.json names {cls}")
    if cls.startswith("Flux"):
        return FamilyGuess(Family.FLUX, pred, True, f"model_index.json names {cls}")
    if cls.startswith("StableDiffusion"):
        unet_cfg, te_cfg = folder / "unet" / "config.json", folder / "text_encoder" / "config.json"
        dim = _json(unet_cfg).get("cross_attention_dim") if unet_cfg.is_file() else None
        act = _json(te_cfg).get("hidden_act") if te_cfg.is_file() else None
        if dim == 128:
            return FamilyGuess(Family.DEMO, pred, True, f"{cls}, cross-attention dim 128: the demo model")
        # OpenCLIP (SD2.x) uses gelu; OpenAI CLIP-L (SD1.x) uses quick_gelu.
        family = Family.SD2 if dim == 1024 or act == "gelu" else Family.SD1
        return FamilyGuess(
            family, pred, dim in (768, 1024), f"{cls}, cross-attention dim {dim}, text act {act}"
        )
    return FamilyGuess(Family.UNKNOWN, pred, False, f"model_index.json names {cls or 'no pipeline class'}")
