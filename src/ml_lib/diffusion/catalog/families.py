"""Model families and the facts about them that planning and loading need (pure data)."""

from __future__ import annotations

from enum import Enum

__all__ = ["CONFIG_FOLDERS", "Family", "PredictionType"]


class Family(str, Enum):
    """Architecture family of a model."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SDXL_REFINER = "sdxl-refiner"
    SD3 = "sd3"
    FLUX = "flux"
    UNKNOWN = "unknown"


class PredictionType(str, Enum):
    """What the UNet predicts."""

    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"


#: Shipped weightless diffusers config folder (under ``assets/configs``) per (family, prediction type).
CONFIG_FOLDERS: dict[tuple[Family, PredictionType], str] = {
    (Family.SD1, PredictionType.EPSILON): "sd1",
    (Family.SD2, PredictionType.EPSILON): "sd2",
    (Family.SD2, PredictionType.V_PREDICTION): "sd2-v",
    (Family.SDXL, PredictionType.EPSILON): "sdxl",
    (Family.SDXL_REFINER, PredictionType.EPSILON): "sdxl-refiner",
}
