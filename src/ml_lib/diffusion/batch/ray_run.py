"""Run a batch on Ray: one actor per GPU (or per N CPU threads), model affinity, retries on lost actors.

The driver plans every item, sends plans to actors and writes what comes back (images with metadata,
the manifest, the history). An idle actor takes the next item of the model it already holds; with none
left there, the model group no other actor holds, largest first; else it helps with a group that still
has two items or more waiting (loading a model for the last item costs more than waiting). An actor
that dies mid-item (killed, out of memory, its node lost) is replaced and its item goes back to the
front of its queue: nothing is lost and the manifest gets each item once. Each actor has two items queued,
so it starts the next while the driver writes the last. Stopping kills the actors;
their items stay pending.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MlDiffusionError
from ..result import CancelToken, GenerationResult, PhaseTimings
from .jobs import BatchItem
from .ray_actors import GenerationWorker, decode_images
from .runner import BatchEvent, BatchReport, BatchRun, GroupKey, group_key

if TYPE_CHECKING:
    from ..plan import GenerationPlan

__all__ = ["RayOptions", "pick_group", "run_ray"]

_POLL_SECONDS = 0.5
_PER_ACTOR = 2  # items queued on an actor: it starts the next while the driver saves the last


@dataclass(frozen=True, slots=True)
class RayOptions:
    """Where and how wide: ``address`` "local" starts a Ray here, "auto" or ``ray://…`` joins a cluster."""

    address: str = "local"
    actors: int | None = None  # None: one per GPU, else one per ``cpus_per_actor`` CPUs
    cpus_per_actor: int = 1
    max_replacements: int = 4  # actors that may die before the run gives up


def pick_group(
    held: GroupKey | None, queues: dict[GroupKey, deque[BatchItem]], held_elsewhere: set[GroupKey]
) -> GroupKey | None:
    """The group an idle actor holding ``held`` should take next (pure: model affinity)."""
    if held is not None and queues.get(held):
        return held
    free = [k for k, q in queues.items() if q and k not in held_elsewhere]
    if free:
        return max(free, key=lambda k: len(queues[k]))
    # Every open group has an actor: help with one only if it has work for two (a load is not free).
    crowded = [k for k, q in queues.items() if len(q) >= 2]
    return max(crowded, key=lambda k: len(queues[k])) if crowded else None


class _Actors:
    """The live actors, what each holds, and the replacements left."""

    def __init__(self, ray: Any, run: BatchRun, options: RayOptions) -> None:
        self.ray = ray
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.count = options.actors or (gpus or max(1, cpus // options.cpus_per_actor))
        settings = dataclasses.replace(run.generator.settings, threads=options.cpus_per_actor)
        resources: dict[str, Any] = {"num_cpus": options.cpus_per_actor}
        if gpus:
            resources["num_gpus"] = 1
        self._cls = ray.remote(**resources)(GenerationWorker)
        self._args = (settings, "cuda" if gpus else None)
        self.replacements = options.max_replacements
        self.held: dict[Any, GroupKey | None] = {}
        for _ in range(self.count):
            self.spawn()

    def spawn(self) -> Any:
        actor = self._cls.remote(*self._args)
        self.held[actor] = None
        return actor

    def replace(self, dead: Any) -> None:
        del self.held[dead]
        if self.replacements <= 0:
            if not self.held:
                raise ConfigError("every Ray actor died and no replacement is left; re-run to resume")
            return
        self.replacements -= 1
        self.spawn()

    def kill_all(self) -> None:
        for actor in list(self.held):
            self.ray.kill(actor)
        self.held.clear()


def run_ray(run: BatchRun, options: RayOptions, stop: CancelToken | None = None) -> BatchReport:
    """Execute every pending item of ``run`` on Ray actors (see the module docstring)."""
    ray = _ray(options)
    with run.manifest:
        actors = _Actors(ray, run, options)
        run.report.workers = actors.count
        run.run_record("start", executor="ray", actors=actors.count)
        try:
            groups = run.groups(run.pending())
            queues = {key: deque(items) for key, items in groups.items()}
            _dispatch(ray, run, actors, queues, stop)
        finally:
            actors.kill_all()
        run.run_record("stop" if run.report.stopped else "end")
    return run.report


def _dispatch(
    ray: Any,
    run: BatchRun,
    actors: _Actors,
    queues: dict[GroupKey, deque[BatchItem]],
    stop: CancelToken | None,
) -> None:
    from ray.exceptions import RayActorError, RayTaskError

    inflight: dict[Any, tuple[Any, BatchItem, GenerationPlan, GroupKey, float]] = {}
    while True:
        if stop is not None and stop.cancelled:
            run.report.stopped = True
            run.emit(BatchEvent("stopped"))
            return
        for actor in list(actors.held):
            while sum(entry[0] is actor for entry in inflight.values()) < _PER_ACTOR:
                if not _submit(run, actors, actor, queues, inflight):
                    break
        if not inflight:
            return
        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=_POLL_SECONDS)
        for ref in ready:
            actor, item, plan, key, t0 = inflight.pop(ref)
            try:
                blobs, timings, gid, pid = ray.get(ref)
            except RayActorError:  # the worker died: the item goes back, another actor takes it
                queues.setdefault(key, deque()).appendleft(item)
                if actor in actors.held:  # its other queued item fails the same way, next round
                    actors.replace(actor)
                continue
            except RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                run.failed(item, cause if isinstance(cause, MlDiffusionError) else exc)
                continue
            result = GenerationResult(
                decode_images(blobs), plan.seeds, plan, (), PhaseTimings(**timings), gid
            )
            run.done(item, run.generator.keep(result), time.perf_counter() - t0, worker=pid)


def _submit(
    run: BatchRun,
    actors: _Actors,
    actor: Any,
    queues: dict[GroupKey, deque[BatchItem]],
    inflight: dict[Any, tuple[Any, BatchItem, GenerationPlan, GroupKey, float]],
) -> bool:
    """Send ``actor`` its next item; False when nothing is left to send."""
    while True:
        held_elsewhere = {k for a, k in actors.held.items() if a is not actor and k is not None}
        key = pick_group(actors.held[actor], queues, held_elsewhere)
        if key is None:
            return False
        item = queues[key].popleft()
        try:
            plan = run.generator.plan(run.request(item))
        except MlDiffusionError as exc:
            run.failed(item, exc)
            continue
        held = actors.held[actor]
        if held is None or held[0] != group_key(plan)[0]:
            run.report.model_loads += 1
        actors.held[actor] = key
        run.emit(BatchEvent("start", item, worker=actor))
        inflight[actor.run.remote(plan.to_json())] = (actor, item, plan, key, time.perf_counter())
        return True


def _ray(options: RayOptions) -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError('Ray is not installed: pip install "ml-lib[ray]"') from None
    if not ray.is_initialized():
        address = None if options.address == "local" else options.address
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot start or join Ray at {options.address}: {exc}") from None
    return ray
