"""Model families and the facts about them that planning and loading need (pure data)."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "CONFIG_FOLDERS",
    "CONTEXT_FAMILIES",
    "LOADABLE_FAMILIES",
    "PIPELINE_GROUPS",
    "Family",
    "PredictionType",
]


class Family(str, Enum):
    """Architecture family of a model."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    SDXL_REFINER = "sdxl-refiner"
    SD3 = "sd3"
    FLUX = "flux"
    DEMO = "demo"  # the embedded demo model (64x64, trained by us), its LoRA and ControlNet
    UNKNOWN = "unknown"


class PredictionType(str, Enum):
    """What the UNet predicts."""

    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"


#: Family by the width of the UNet's cross-attention context (what the text encoder feeds it).
CONTEXT_FAMILIES: dict[int, Family] = {
    768: Family.SD1,
    1024: Family.SD2,
    2048: Family.SDXL,
    1280: Family.SDXL_REFINER,
    128: Family.DEMO,
}

#: Shipped weightless diffusers config folder (under ``assets/configs``) per (family, prediction type).
CONFIG_FOLDERS: dict[tuple[Family, PredictionType], str] = {
    (Family.SD1, PredictionType.EPSILON): "sd1",
    (Family.SD2, PredictionType.EPSILON): "sd2",
    (Family.SD2, PredictionType.V_PREDICTION): "sd2-v",
    (Family.SDXL, PredictionType.EPSILON): "sdxl",
    (Family.SDXL_REFINER, PredictionType.EPSILON): "sdxl-refiner",
}

#: Families this version generates with (the SDXL refiner only refines: img2img).
LOADABLE_FAMILIES = frozenset({Family.SD1, Family.SD2, Family.SDXL, Family.SDXL_REFINER, Family.DEMO})

#: Families that share a pipeline class and text-encoder layout (a config folder or a LoRA of one group
#: serves only that group).
PIPELINE_GROUPS: dict[Family, str] = {
    Family.SD1: "sd",
    Family.SD2: "sd",
    Family.DEMO: "sd",
    Family.SDXL: "sdxl",
    Family.SDXL_REFINER: "sdxl-refiner",
}
