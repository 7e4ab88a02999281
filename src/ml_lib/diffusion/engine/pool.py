"""A small LRU pool of :class:`LoadedPipeline` records, keyed by what determines weights and placement.

The pool owns each record: the diffusers pipeline and everything loaded into it (LoRAs, embeddings,
ControlNets, IP-Adapters, mode views, the scheduler in use). Nothing is hung on diffusers objects, and a
record is evicted as a whole.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..plan import ModelRef
from .adapters import LoraState
from .ip_adapter import IPAdapterState
from .loading import load_pipeline
from .memory import apply_strategy
from .storage import apply_storage

__all__ = ["LoadedPipeline", "PipelinePool", "PoolKey"]

log = logging.getLogger(__name__)

# reference, config folder, dtype, device, memory strategy, storage dtype
PoolKey = tuple[str, str | None, str, str, str, str | None]


@dataclass(slots=True, eq=False)
class LoadedPipeline:
    """A loaded base pipeline and the record of what is loaded into it (owned by the pool).

    ``controlnets`` maps a ControlNet's model reference to its module; ``views`` maps (mode, ControlNet
    references) to a ``from_pipe`` view sharing the base's modules; ``scheduler`` is the (sampler choice,
    prediction type) the pipeline's scheduler was built for, ``base_scheduler_config`` the config it
    shipped with.
    """

    pipe: Any
    key: PoolKey
    loras: LoraState = field(default_factory=LoraState)
    embeddings: dict[str, str] = field(default_factory=dict)
    controlnets: dict[str, Any] = field(default_factory=dict)
    ip_adapters: IPAdapterState = field(default_factory=IPAdapterState)
    views: dict[tuple[str, tuple[str, ...]], Any] = field(default_factory=dict)
    scheduler: tuple[Any, str] | None = None
    base_scheduler_config: dict[str, Any] | None = None


class PipelinePool:
    """Keeps up to ``capacity`` loaded pipelines; the least recently used is dropped first."""

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._items: OrderedDict[PoolKey, LoadedPipeline] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(
        self, model: ModelRef, *, dtype: str, device: str, memory: str = "none", storage: str | None = None
    ) -> LoadedPipeline:
        """The loaded pipeline for ``model`` prepared for the ``memory`` strategy (weights kept in
        ``storage`` when given, computed in ``dtype``), loading it (and evicting the oldest) when not
        pooled; a pipeline prepared for one strategy is never served for another."""
        key: PoolKey = (model.reference, model.config_dir, dtype, device, memory, storage)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            while len(self._items) >= self._capacity:
                old, _ = self._items.popitem(last=False)
                log.info("dropping %s (and what was loaded into it) from the pipeline pool", old[0])
                gc.collect()
            pipe = load_pipeline(model, dtype=storage or dtype, device=device)
            apply_strategy(pipe, memory, device, compute=dtype)
            if storage is not None:
                apply_storage(pipe, storage, dtype)
            loaded = LoadedPipeline(pipe, key)
            self.loads += 1
            self._items[key] = loaded
            return loaded

    def drop(self, loaded: LoadedPipeline) -> None:
        """Forget ``loaded`` (e.g. after it ran out of memory), freeing what it held."""
        with self._lock:
            if self._items.get(loaded.key) is loaded:
                del self._items[loaded.key]
        gc.collect()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Drop every pipeline."""
        with self._lock:
            self._items.clear()
        gc.collect()
