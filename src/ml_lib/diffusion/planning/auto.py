"""What automatic choices may pick from: usable checkpoints and an index of usable LoRAs."""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.records import ModelKind, ModelRecord, Status
from .lora_cache import IndexCache
from .loras import LoraIndex, Similarity

__all__ = ["Candidates"]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Usable catalog checkpoints and an index of usable LoRAs, for automatic choices."""

    checkpoints: tuple[ModelRecord, ...] = ()
    loras: LoraIndex | None = None
    max_loras: int = 2
    similarity: Similarity | None = None

    @classmethod
    def of(
        cls,
        records: tuple[ModelRecord, ...],
        *,
        max_loras: int = 2,
        similarity: Similarity | None = None,
        cache: IndexCache | None = None,
    ) -> Candidates:
        """Candidates from any records (others than checkpoints and LoRAs are ignored); with ``cache`` the
        LoRA index of the same records tuple is reused."""
        if cache is not None:
            return cls(cache.checkpoints(records), cache.get(records), max_loras, similarity)
        checkpoints = tuple(r for r in records if r.kind is ModelKind.CHECKPOINT and r.status is Status.OK)
        return cls(checkpoints, LoraIndex(records), max_loras, similarity)

    @property
    def records(self) -> tuple[ModelRecord, ...]:
        """Checkpoints and LoRAs."""
        if self.loras is None:
            return self.checkpoints
        return self.checkpoints + self.loras.records + self.loras.speed
