"""ml_lib.diffusion: from a plain prompt to a good image on your own hardware.

Public names are imported lazily, so ``import ml_lib.diffusion`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog.catalog import Catalog
    from .errors import MlDiffusionError
    from .facade import ImageGenerator
    from .plan import Decision, GenerationPlan, ModelRef, Source
    from .request import ControlRequest, GenerationRequest, IPAdapterRequest, LoraRequest
    from .result import CancelToken, GenerationResult, PhaseTimings, StepInfo
    from .settings import Limits, Settings

__all__ = [
    "CancelToken",
    "Catalog",
    "ControlRequest",
    "Decision",
    "GenerationPlan",
    "GenerationRequest",
    "GenerationResult",
    "IPAdapterRequest",
    "ImageGenerator",
    "Limits",
    "LoraRequest",
    "MlDiffusionError",
    "ModelRef",
    "PhaseTimings",
    "Settings",
    "Source",
    "StepInfo",
]

_WHERE = {
    "CancelToken": "result",
    "Catalog": "catalog.catalog",
    "ControlRequest": "request",
    "IPAdapterRequest": "request",
    "LoraRequest": "request",
    "Decision": "plan",
    "GenerationPlan": "plan",
    "GenerationRequest": "request",
    "GenerationResult": "result",
    "ImageGenerator": "facade",
    "Limits": "settings",
    "MlDiffusionError": "errors",
    "ModelRef": "plan",
    "PhaseTimings": "result",
    "Settings": "settings",
    "Source": "plan",
    "StepInfo": "result",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ml_lib.diffusion' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
