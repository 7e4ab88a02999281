"""Glue between the catalog, the prompt analysis and the planner's automatic choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..catalog.records import ModelKind, ModelRecord, Status
from ..prompt.analysis import PromptAnalysis
from ..request import GenerationRequest
from .loras import LoraIndex, Similarity
from .models import CheckpointChoice, ScoreHook, choose_checkpoint, neutral

if TYPE_CHECKING:
    from ..catalog.catalog import Catalog

__all__ = ["Candidates", "auto_checkpoint", "catalog_candidates", "model_reference"]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Usable catalog checkpoints and an index of usable LoRAs, for automatic choices."""

    checkpoints: tuple[ModelRecord, ...] = ()
    loras: LoraIndex | None = None
    max_loras: int = 2
    similarity: Similarity | None = None

    @classmethod
    def of(cls, records: tuple[ModelRecord, ...], *, max_loras: int = 2) -> Candidates:
        """Candidates from any records (others than checkpoints and LoRAs are ignored)."""
        checkpoints = tuple(r for r in records if r.kind is ModelKind.CHECKPOINT and r.status is Status.OK)
        return cls(checkpoints, LoraIndex(records), max_loras)

    @property
    def records(self) -> tuple[ModelRecord, ...]:
        """Checkpoints and LoRAs."""
        if self.loras is None:
            return self.checkpoints
        return self.checkpoints + self.loras.records + self.loras.speed


def catalog_candidates(catalog: Catalog, similarity: Similarity | None = None) -> Candidates:
    """Candidates from the catalog's usable checkpoints and LoRAs (``similarity``: semantic LoRA scoring)."""
    ok = (Status.OK,)
    checkpoints = catalog.find(kind=ModelKind.CHECKPOINT, statuses=ok)
    loras = LoraIndex(catalog.find(kind=ModelKind.LORA, statuses=ok))
    return Candidates(checkpoints, loras, similarity=similarity)


def auto_checkpoint(
    request: GenerationRequest,
    analysis: PromptAnalysis,
    candidates: Candidates | None,
    *,
    memory_fit: ScoreHook = neutral,
    prior: ScoreHook = neutral,
) -> CheckpointChoice | None:
    """The checkpoint chosen for a request that names none (None: named, ``auto`` off, or none fit)."""
    if request.model or not request.auto or candidates is None:
        return None
    return choose_checkpoint(analysis, candidates.checkpoints, memory_fit=memory_fit, prior=prior)


def model_reference(request: GenerationRequest, choice: CheckpointChoice | None) -> str | None:
    """What to resolve: the user's model, else the chosen checkpoint's path."""
    return request.model or (choice.record.path if choice is not None else None)
