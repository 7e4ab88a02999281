"""What a name can mean: the catalog's records plus the package's built-ins (probed in memory).

The built-ins (the demo model, its LoRA and its ControlNet) are known from the very first request on a
fresh home, without a scan and without writing anything; the catalog's own record of a built-in (after a
scan) wins, since it carries hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ..catalog.builtins import builtin_records
from ..catalog.records import ModelKind, ModelRecord, Status
from ..catalog.store import name_key
from .usable import UsableCache

if TYPE_CHECKING:
    from ..catalog.catalog import Catalog

__all__ = ["KnownModels", "Lookup"]

#: ``lookup(name, kind)``: the record a name means, or None.
Lookup = Callable[[str, ModelKind], ModelRecord | None]


class KnownModels:
    """Catalog lookups (A1111 name rules) with the built-ins as a fallback; read-only."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._builtins: tuple[ModelRecord, ...] | None = None
        self._usable = UsableCache()
        self._joined: dict[tuple[str, ...], tuple[tuple[ModelRecord, ...], tuple[ModelRecord, ...]]] = {}

    def builtins(self) -> tuple[ModelRecord, ...]:
        """The built-ins' records (probed once per instance)."""
        if self._builtins is None:
            self._builtins = builtin_records() if self.catalog.builtins else ()
        return self._builtins

    def named(self, ref: str, kind: ModelKind) -> ModelRecord | None:
        """The record ``ref`` names (catalog first; AmbiguousModelError when several fit), else None."""
        record = self.catalog.resolve_name(ref, (kind,))
        if record is not None:
            return record
        key = name_key(ref.strip())
        for builtin in self.builtins():
            if builtin.kind is kind and key in (name_key(builtin.name), name_key(builtin.rel_name)):
                return builtin
        return None

    def at(self, path: str) -> ModelRecord | None:
        """The record of exactly ``path``, if known."""
        return self.catalog.at(path) or next((r for r in self.builtins() if r.path == path), None)

    def usable(self, kinds: Collection[ModelKind]) -> tuple[ModelRecord, ...]:
        """Records of ``kinds`` with status ok whose file still exists (a file deleted since the last scan
        is not a candidate), catalog first, then built-ins the catalog lacks."""
        key = tuple(sorted(k.value for k in kinds))

        def load() -> tuple[ModelRecord, ...]:
            found = {r.path: r for kind in kinds for r in self.catalog.find(kind=kind, statuses=(Status.OK,))}
            return tuple(found.values())

        catalogued = self._usable.get(key, self.catalog.generation(), load)
        last = self._joined.get(key)
        if last is not None and last[0] is catalogued:
            return last[1]  # the same tuple while nothing changed: caches keyed on it stay valid
        have = {r.path for r in catalogued}
        extra = tuple(
            b for b in self.builtins() if b.kind in kinds and b.status is Status.OK and b.path not in have
        )
        joined = catalogued + extra if extra else catalogued
        self._joined[key] = (catalogued, joined)
        return joined
