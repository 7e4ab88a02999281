"""An LRU pool of :class:`LoadedPipeline` records under RAM and VRAM byte budgets.

Keyed by what determines weights and placement: the model (reference, config folder and its files' size,
times and inode, so a file changed on disk is reloaded, never served stale), dtype, device and memory
strategy. The pool owns each record: the diffusers pipeline and everything loaded into it (LoRAs,
embeddings, ControlNets, IP-Adapters, the ``from_pipe`` views that give txt2img, img2img, inpaint and
ControlNet pipelines of one checkpoint the same modules, the scheduler in use). Nothing is hung on diffusers
objects, and a record is evicted as a whole; its bytes count each tensor storage once.

- :meth:`PipelinePool.acquire` pins the record until :meth:`PipelinePool.release` (or use
  :meth:`PipelinePool.lease`): a pinned model is never evicted, whatever other threads ask for.
- Loading is single-flight: a second request for a model being loaded waits for that load and gets the
  same record; a failed load is not cached, and every waiter gets its error.
- Before a load, the least recently used unpinned models are evicted until the new one's expected bytes
  fit (``planning/pool_budget.py``); after a generation the record is measured again (ControlNets,
  views and LoRAs grow it) and the pool trimmed.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..plan import ModelRef
from ..planning.pool_budget import GB, PoolBudget, Resident, choose_victims
from .adapters import LoraState
from .ip_adapter import IPAdapterState
from .pool_bytes import Fingerprint, fingerprint, record_bytes, record_shape
from .storage import release_scratch

__all__ = ["LoadedPipeline", "Loader", "PipelinePool", "PoolKey", "PoolStats"]

log = logging.getLogger(__name__)

# reference, config folder, dtype (compute), device, memory strategy, storage dtype (None: the dtype)
PoolKey = tuple[str, str | None, str, str, str, str | None]
#: Loads a model: (model, dtype, device, memory strategy, storage dtype) → a pipeline prepared for them.
Loader = Callable[[ModelRef, str, str, str, str | None], Any]


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
    preview_map: Any = None  # how live previews are drawn (engine/preview.py), chosen on first use


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Counters since the pool was made and what it holds now.

    ``hits``: requests served by a pooled model (or by joining another request's load); ``misses``:
    requests that loaded; ``loads``: loads that succeeded, ``failed_loads`` the others; ``evictions``:
    models dropped for room (``stale`` those dropped because their files changed on disk); ``over_budget``:
    loads that could not be brought within the budget (a model larger than it, or pinned models in the way).
    """

    hits: int
    misses: int
    loads: int
    failed_loads: int
    evictions: int
    stale: int
    over_budget: int
    models: int
    pinned: int
    ram_bytes: int
    vram_bytes: int
    ram_budget: int | None
    vram_budget: int | None


_Key = tuple[PoolKey, Fingerprint]


@dataclass(slots=True, eq=False)
class _Entry:
    loaded: LoadedPipeline
    key: _Key
    ram: int = 0
    vram: int = 0
    pins: int = 0
    shape: tuple[object, ...] = ()


@dataclass(slots=True, eq=False)
class _Flight:
    """A load in progress: waiters block on ``done`` and read ``entry`` or ``error``."""

    done: threading.Event = field(default_factory=threading.Event)
    waiters: int = 0
    expected: tuple[int, int] = (0, 0)
    entry: _Entry | None = None
    error: BaseException | None = None


class PipelinePool:
    """Loaded pipelines under a byte ``budget`` (and at most ``capacity`` of them when given); the least
    recently used unpinned one is evicted first. Thread-safe."""

    def __init__(
        self,
        capacity: int | None = None,
        *,
        budget: PoolBudget | None = None,
        loader: Loader | None = None,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self.budget = budget or PoolBudget()
        if loader is None:
            from .loading import load_prepared

            loader = load_prepared
        self._loader: Loader = loader
        self._items: OrderedDict[_Key, _Entry] = OrderedDict()
        self._retired: dict[int, _Entry] = {}  # out of the index but still pinned by a user
        self._flights: dict[_Key, _Flight] = {}
        self._sizes: dict[PoolKey, tuple[int, int]] = {}  # measured bytes by model, for the next load
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("hits", "misses", "loads", "failed_loads", "evictions", "stale", "over_budget"), 0
        )

    # -- using models -----------------------------------------------------------------------------
    def acquire(
        self,
        model: ModelRef,
        *,
        dtype: str,
        device: str,
        memory: str = "none",
        expected: tuple[int, int] | None = None,
        storage: str | None = None,
    ) -> LoadedPipeline:
        """The pipeline for ``model`` prepared for ``memory`` (weights kept in ``storage`` when given),
        pinned until :meth:`release`; loaded (once, whichever threads ask) when not pooled. ``expected`` is
        its (RAM, VRAM) bytes as planned, used to make room before it loads (its measured size from an
        earlier load takes precedence)."""
        base: PoolKey = (model.reference, model.config_dir, dtype, device, memory, storage)
        key: _Key = (base, fingerprint(model.reference))
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._counts["hits"] += 1
                self._items.move_to_end(key)
                entry.pins += 1
                return entry.loaded
            victims = self._retire_stale(key)
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                self._counts["misses"] += 1
                flight = self._flights[key] = _Flight(expected=self._sizes.get(base, expected or (0, 0)))
                victims += self._make_room(flight.expected, model.reference)
            else:
                self._counts["hits"] += 1
                flight.waiters += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.entry is not None
            return flight.entry.loaded
        if victims:
            del victims
            gc.collect()
        return self._load(flight, key, model, dtype, device, memory, storage).loaded

    def release(self, loaded: LoadedPipeline) -> None:
        """Unpin ``loaded``; measure it again if something was loaded into it (ControlNets, views, LoRAs
        grow a record) and evict others if the pool is now over budget. The generation is over, so this
        thread's scratch buffers in its layers go too."""
        parts = getattr(loaded.pipe, "components", None)
        release_scratch(*(parts.values() if isinstance(parts, dict) else (loaded.pipe,)))
        shape = record_shape(loaded)
        with self._lock:
            entry = self._find(loaded)
            if entry is None:
                return
            changed = entry.shape != shape
        size = record_bytes(loaded) if changed else None  # outside the lock: the caller still pins it
        with self._lock:
            entry.pins -= 1
            if size is not None:
                entry.ram, entry.vram = size
                entry.shape = shape
                self._sizes[entry.key[0]] = size
            if entry.pins <= 0 and self._retired.pop(id(entry), None) is not None:
                dropped: list[_Entry] = [entry]
            else:
                dropped = self._trim()
        if dropped:
            del dropped, entry
            gc.collect()

    @contextmanager
    def lease(
        self, model: ModelRef, *, dtype: str, device: str, memory: str = "none", storage: str | None = None
    ) -> Iterator[LoadedPipeline]:
        """:meth:`acquire` for the ``with`` block, released after it."""
        loaded = self.acquire(model, dtype=dtype, device=device, memory=memory, storage=storage)
        try:
            yield loaded
        finally:
            self.release(loaded)

    def get(
        self, model: ModelRef, *, dtype: str, device: str, memory: str = "none", storage: str | None = None
    ) -> LoadedPipeline:
        """The loaded pipeline for ``model`` prepared for ``memory`` (weights kept in ``storage`` when
        given), not pinned (it may be evicted by the next request); a pipeline prepared for one strategy
        is never served for another."""
        loaded = self.acquire(model, dtype=dtype, device=device, memory=memory, storage=storage)
        self.release(loaded)
        return loaded

    def drop(self, loaded: LoadedPipeline) -> None:
        """Forget ``loaded`` (e.g. after it ran out of memory), freeing what it held once its users release
        it; the next request loads it again."""
        with self._lock:
            entry = self._find(loaded)
            if entry is not None and self._items.get(entry.key) is entry:
                del self._items[entry.key]
                if entry.pins > 0:
                    self._retired[id(entry)] = entry
        del entry
        gc.collect()

    def clear(self) -> None:
        """Drop every pipeline."""
        with self._lock:
            self._items.clear()
            self._retired.clear()
        gc.collect()

    # -- reading ----------------------------------------------------------------------------------
    def stats(self) -> PoolStats:
        """Hits, misses, loads, evictions and the bytes held now (RAM and VRAM)."""
        with self._lock:
            held = [*self._items.values(), *self._retired.values()]
            return PoolStats(
                **self._counts,
                models=len(self._items),
                pinned=sum(1 for e in held if e.pins > 0),
                ram_bytes=sum(e.ram for e in held),
                vram_bytes=sum(e.vram for e in held),
                ram_budget=self.budget.ram,
                vram_budget=self.budget.vram,
            )

    @property
    def loads(self) -> int:
        """Successful loads so far."""
        return self._counts["loads"]

    def __len__(self) -> int:
        return len(self._items)

    # -- inside (called with the lock held unless said otherwise) ---------------------------------
    def _load(
        self,
        flight: _Flight,
        key: _Key,
        model: ModelRef,
        dtype: str,
        device: str,
        memory: str,
        storage: str | None,
    ) -> _Entry:
        """Load outside the lock, publish the result to the waiters (pinned once for each of them)."""
        try:
            pipe = self._loader(model, dtype, device, memory, storage)
            entry = _Entry(LoadedPipeline(pipe, key[0]), key)
            entry.ram, entry.vram = record_bytes(entry.loaded)
            entry.shape = record_shape(entry.loaded)
        except BaseException as exc:  # the waiters get the error; nothing is cached
            with self._lock:
                self._counts["failed_loads"] += 1
                del self._flights[key]
                flight.error = exc
            flight.done.set()
            raise
        with self._lock:
            self._counts["loads"] += 1
            self._sizes[key[0]] = (entry.ram, entry.vram)
            entry.pins = 1 + flight.waiters
            self._items[key] = entry
            del self._flights[key]
            flight.entry = entry
            dropped = self._trim()
        flight.done.set()
        if dropped:
            del dropped
            gc.collect()
        return entry

    def _find(self, loaded: LoadedPipeline) -> _Entry | None:
        for entry in (*self._items.values(), *self._retired.values()):
            if entry.loaded is loaded:
                return entry
        return None

    def _retire_stale(self, key: _Key) -> list[_Entry]:
        """Entries of the same model whose files have changed since they loaded."""
        stale = [e for k, e in self._items.items() if k[0] == key[0] and k[1] != key[1]]
        for entry in stale:
            log.info("%s changed on disk: dropping the pooled copy and loading it again", key[0][0])
            del self._items[entry.key]
            self._counts["stale"] += 1
            if entry.pins > 0:
                self._retired[id(entry)] = entry
        return stale

    def _residents(self) -> list[Resident]:
        return [Resident(k, e.ram, e.vram, e.pins > 0) for k, e in self._items.items()]

    def _inflight(self) -> tuple[int, int]:
        flights = self._flights.values()
        return sum(f.expected[0] for f in flights), sum(f.expected[1] for f in flights)

    def _make_room(self, incoming: tuple[int, int], reference: str) -> list[_Entry]:
        """Evict for a model about to load (its reservation already counted among the flights)."""
        others = self._inflight()
        retired = (sum(e.ram for e in self._retired.values()), sum(e.vram for e in self._retired.values()))
        need = (others[0] + retired[0], others[1] + retired[1])
        keys, fits = choose_victims(self._residents(), need, self.budget)
        victims = self._evict(keys)
        victims += self._evict_for_count(extra=1)
        if not fits:
            self._counts["over_budget"] += 1
            alone = choose_victims([], incoming, self.budget)[1] is False
            why = "it is larger than the whole budget: it loads alone" if alone else "models in use stay"
            log.warning(
                "pool: %s needs ~%.2f GB RAM / %.2f GB VRAM, budget %s; %s",
                reference,
                incoming[0] / GB,
                incoming[1] / GB,
                self.budget.describe(),
                why,
            )
        return victims

    def _trim(self) -> list[_Entry]:
        """Evict least recently used unpinned entries, never the most recent, while over budget."""
        if not self._items:
            return []
        *older, newest = self._items.values()
        retired = (sum(e.ram for e in self._retired.values()), sum(e.vram for e in self._retired.values()))
        fixed = (newest.ram + retired[0], newest.vram + retired[1])
        inflight = self._inflight()
        need = (fixed[0] + inflight[0], fixed[1] + inflight[1])
        residents = [Resident(e.key, e.ram, e.vram, e.pins > 0) for e in older]
        keys, _ = choose_victims(residents, need, self.budget)
        return self._evict(keys) + self._evict_for_count(extra=0)

    def _evict_for_count(self, extra: int) -> list[_Entry]:
        if self._capacity is None:
            return []
        unpinned = [k for k, e in self._items.items() if e.pins <= 0]
        excess = len(self._items) + extra - self._capacity
        return self._evict(unpinned[: max(excess, 0)])

    def _evict(self, keys: Sequence[object]) -> list[_Entry]:
        out = []
        for key in keys:
            entry = self._items.pop(key)  # type: ignore[call-overload]
            self._counts["evictions"] += 1
            log.info(
                "pool: evicting %s (%.2f GB RAM, %.2f GB VRAM, least recently used)",
                entry.key[0][0],
                entry.ram / GB,
                entry.vram / GB,
            )
            out.append(entry)
        return out
