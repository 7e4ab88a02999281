"""Usable catalog records, read once per catalog state instead of once per plan.

A plan needs every usable checkpoint and LoRA whose file still exists. Reading 10,000 records from SQLite
and checking 10,000 files took most of a plan's time; :class:`UsableCache` re-reads the records only when
the catalog's generation changes, and re-checks files only in folders whose modification time changed
(deleting or renaming a file changes its folder's mtime). While nothing changes it returns the very same
tuple, so caches keyed on it (the LoRA index) stay valid too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable

from ..catalog.records import ModelRecord

__all__ = ["UsableCache"]


def _mtime(folder: str) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


class UsableCache:
    """The last answer per key, with the folder mtimes its file checks saw."""

    def __init__(self) -> None:
        self._entries: dict[
            Hashable, tuple[Hashable, tuple[ModelRecord, ...], dict[str, int | None], tuple[ModelRecord, ...]]
        ] = {}

    def get(
        self, key: Hashable, generation: Hashable, load: Callable[[], tuple[ModelRecord, ...]]
    ) -> tuple[ModelRecord, ...]:
        """The records ``load`` returns whose files exist; ``load`` runs again only when ``generation``
        differs from the last call's for this ``key``."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == generation:
            _, records, folders, kept = entry
            now = {folder: _mtime(folder) for folder in folders}
            if now == folders:
                return kept
        else:
            records = load()
            now = {os.path.dirname(r.path): None for r in records}
            now = {folder: _mtime(folder) for folder in now}
        kept = tuple(r for r in records if os.path.exists(r.path))
        self._entries[key] = (generation, records, now, kept)
        return kept
