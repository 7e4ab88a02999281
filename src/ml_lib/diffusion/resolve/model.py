"""Which checkpoint a request runs on: the one it names, else the catalog's best fit, else the demo.

The automatic choice scores the usable catalogued checkpoints against the prompt analysis (see
:mod:`ml_lib.diffusion.planning.models`); the built-in demo model is part of the candidates with a
large penalty, so it is chosen only when nothing else is catalogued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..catalog.families import Family
from ..catalog.records import ModelRecord
from ..errors import RequestError
from ..plan import Decision
from ..planning.models import choose_checkpoint
from ..prompt.analysis import PromptAnalysis
from ..request import GenerationRequest

__all__ = ["ModelChoice", "choose_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What to resolve (a path, catalog name or Hub id) and, for an automatic choice, why."""

    reference: str
    decision: Decision | None = None


def choose_model(
    request: GenerationRequest, analysis: PromptAnalysis, checkpoints: tuple[ModelRecord, ...]
) -> ModelChoice:
    """The user's model, else (with ``auto``) the best of ``checkpoints``; RequestError when neither."""
    if request.model:
        return ModelChoice(request.model)
    choice = choose_checkpoint(analysis, checkpoints) if request.auto else None
    if choice is None:
        raise RequestError(
            "No model given and no catalogued checkpoint to choose from: pass --model PATH (a diffusers "
            "folder or .safetensors checkpoint), or set ML_DIFFUSION_MODELS and run `ml-diffusion models scan`."
        )
    if choice.record.family is Family.DEMO:
        log.info("no checkpoint given or catalogued: using the built-in demo model %s", choice.record.path)
    return ModelChoice(choice.record.path, choice.decision)
