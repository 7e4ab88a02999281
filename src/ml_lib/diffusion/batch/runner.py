"""What every batch run shares, in-process or on Ray: the manifest, planning up front, model groups, events.

A run lists the expanded items in the manifest, skips the ones already done, plans the rest up front (a
bad LoRA name or an absurd size fails that item, and the rest goes on), groups them by model and LoRA
set so each worker loads a model once, and hands the groups to an executor.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import MlDiffusionError
from .jobs import BatchItem
from .manifest import Manifest

if TYPE_CHECKING:
    from ..facade import ImageGenerator
    from ..plan import GenerationPlan
    from ..request import GenerationRequest
    from ..result import CancelToken, GenerationResult
    from .ray_run import RayOptions

__all__ = ["BatchEvent", "BatchReport", "BatchRun", "GroupKey", "group_key", "run_batch"]

MANIFEST_NAME = "manifest.jsonl"

#: The model and LoRA set of a plan: items with one key share a loaded pipeline.
GroupKey = tuple[str, tuple[tuple[str, float, float], ...]]


def group_key(plan: GenerationPlan) -> GroupKey:
    """The model identity (hash, else reference) and the LoRA set with its weights of ``plan``."""
    loras = sorted((lora.path, lora.unet_weight, lora.te_weight) for lora in plan.loras)
    return (plan.model.hash or plan.model.reference, tuple(loras))


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """Progress of a run: an item started, finished or failed, or the run's counts changed."""

    kind: Literal["queued", "start", "done", "failed", "stopped"]
    item: BatchItem | None = None
    message: str = ""
    result: GenerationResult | None = None
    count: int = 0  # "queued": the items this run will try
    worker: Any = None  # "start" on Ray: the actor handle that took the item


@dataclass(slots=True)
class BatchReport:
    """How a run went: counts, failures (key, index, error) and model loads."""

    total: int = 0
    skipped: int = 0  # done by an earlier run
    done: int = 0
    failed: int = 0
    model_loads: int = 0
    seconds: float = 0.0
    stopped: bool = False
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form."""
        return dataclasses.asdict(self)


class BatchRun:
    """One run of a job into ``out_dir``: owns the manifest and the report; executors call back into it."""

    def __init__(
        self,
        generator: ImageGenerator,
        items: list[BatchItem],
        out_dir: Path,
        on_event: Callable[[BatchEvent], None] | None = None,
    ) -> None:
        self.generator = generator
        self.items = items
        self.out_dir = out_dir
        self.manifest = Manifest(out_dir / MANIFEST_NAME)
        self.report = BatchReport(total=len(items))
        self._on_event = on_event
        self._t0 = time.perf_counter()

    def emit(self, event: BatchEvent) -> None:
        """Pass ``event`` to the listener, if any."""
        if self._on_event is not None:
            self._on_event(event)

    def request(self, item: BatchItem) -> GenerationRequest:
        """The item's request, writing into the batch's folder unless the item names its own."""
        if item.request.output_dir is not None:
            return item.request
        return dataclasses.replace(item.request, output_dir=str(self.out_dir))

    def pending(self) -> list[BatchItem]:
        """List new items in the manifest; the items not done yet, in job order."""
        state = self.manifest.state()
        for item in self.items:
            if item.key not in state.listed:
                self.manifest.write(
                    {"kind": "item", "key": item.key, "index": item.index, "line": item.line}
                    | {"request": item.request_json()}
                )
        todo = [item for item in self.items if item.key not in state.done]
        self.report.skipped = len(self.items) - len(todo)
        self.emit(BatchEvent("queued", count=len(todo)))
        return todo

    def groups(self, todo: list[BatchItem]) -> dict[GroupKey, list[BatchItem]]:
        """Plan each item (a dry run) to group it by model and LoRA set; failures are recorded here."""
        groups: dict[GroupKey, list[BatchItem]] = {}
        for item in todo:
            try:
                plan = self.generator.plan(self.request(item))
            except MlDiffusionError as exc:
                self.failed(item, exc)
                continue
            groups.setdefault(group_key(plan), []).append(item)
        return groups

    def done(self, item: BatchItem, result: GenerationResult, seconds: float, worker: int = 0) -> None:
        """Record a finished item (after its images are written); ``worker``: the process that ran it."""
        self.manifest.write(
            {
                "kind": "done",
                "key": item.key,
                "index": item.index,
                "generation_id": result.generation_id,
                "seeds": list(result.seeds),
                "model": result.plan.model.name,
                "paths": [str(p) for p in result.paths],
                "seconds": round(seconds, 3),
                "worker": worker or os.getpid(),
            }
        )
        self.report.done += 1
        self.emit(BatchEvent("done", item, result=result))

    def failed(self, item: BatchItem, error: BaseException) -> None:
        """Record a failed item; the run goes on."""
        message = str(error) or type(error).__name__
        self.manifest.write(
            {"kind": "failed", "key": item.key, "index": item.index, "error": message}
            | {"type": type(error).__name__}
        )
        self.report.failed += 1
        self.report.failures.append((item.key, item.index, message))
        self.emit(BatchEvent("failed", item, message))

    def run_record(self, event: str, **extra: Any) -> None:
        """A ``run`` record (start, stop, end) with the counts so far."""
        self.report.seconds = time.perf_counter() - self._t0
        self.manifest.write({"kind": "run", "event": event, **self.report.to_dict(), **extra})


def run_batch(
    generator: ImageGenerator,
    job: str | Path | list[BatchItem],
    out_dir: Path,
    repeat: int = 1,
    seed_start: int | None = None,
    ray: RayOptions | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    stop: CancelToken | None = None,
) -> BatchReport:
    """The body of :meth:`ImageGenerator.batch`: expand the job, then run it here or on Ray."""
    from .jobs import load_job

    items = job if isinstance(job, list) else load_job(Path(job), repeat=repeat, seed_start=seed_start)
    run = BatchRun(generator, items, out_dir, on_event)
    if ray is None:
        from .local import run_local

        return run_local(run, stop)
    from .ray_run import run_ray

    return run_ray(run, ray, stop)
