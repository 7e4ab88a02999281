"""The LoRA index, built once per catalog state rather than once per plan."""

from __future__ import annotations

from ..catalog.records import ModelKind, ModelRecord, Status
from .lora_index import LoraIndex

__all__ = ["IndexCache"]


class IndexCache:
    """The index of the last candidate tuple seen. The resolver hands out the very same tuple while the
    catalog (and the files' folders) are unchanged, so identity is the cache key: any change to the catalog
    gives a new tuple and a rebuilt index."""

    def __init__(self) -> None:
        self._records: tuple[ModelRecord, ...] | None = None
        self._index: LoraIndex | None = None
        self._checkpoints: tuple[ModelRecord, ...] = ()
        self._by_path: dict[str, ModelRecord] = {}
        self.builds = 0  # how many indexes were built (for tests and benchmarks)

    def get(self, records: tuple[ModelRecord, ...]) -> LoraIndex:
        """The index of ``records`` (rebuilt when they are not the tuple of the last call)."""
        if self._index is None or self._records is not records:
            self._index = LoraIndex(records)
            self._records = records
            self._checkpoints = tuple(
                r for r in records if r.kind is ModelKind.CHECKPOINT and r.status is Status.OK
            )
            self._by_path = {r.path: r for r in records}
            self.builds += 1
        return self._index

    def checkpoints(self, records: tuple[ModelRecord, ...]) -> tuple[ModelRecord, ...]:
        """The usable checkpoints among ``records`` (kept with the index)."""
        self.get(records)
        return self._checkpoints

    def by_path(self, records: tuple[ModelRecord, ...]) -> dict[str, ModelRecord]:
        """``records`` keyed by path (kept with the index)."""
        self.get(records)
        return self._by_path
