"""A small LRU pool of loaded pipelines, keyed by what determines their weights and placement."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from typing import Any

from ..plan import ModelRef
from .loading import load_pipeline

__all__ = ["PipelinePool"]

log = logging.getLogger(__name__)


class PipelinePool:
    """Keeps up to ``capacity`` pipelines; the least recently used is dropped first."""

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._items: OrderedDict[tuple[str, str | None, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: ModelRef, *, dtype: str, device: str) -> tuple[Any, bool]:
        """The pipeline for ``model`` and whether it was loaded now (False when reused)."""
        key = (model.reference, model.config_dir, dtype, device)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], False
            while len(self._items) >= self._capacity:
                old, _ = self._items.popitem(last=False)
                log.info("dropping %s from the pipeline pool", old[0])
                gc.collect()
            pipe = load_pipeline(model, dtype=dtype, device=device)
            self._items[key] = pipe
            return pipe, True

    def clear(self) -> None:
        """Drop every pipeline."""
        with self._lock:
            self._items.clear()
        gc.collect()
