"""Run a batch in this process: one model group after another, through the generator's own pool."""

from __future__ import annotations

import time

from ..errors import GenerationCancelled, MlDiffusionError
from ..result import CancelToken
from .jobs import BatchItem
from .runner import BatchEvent, BatchReport, BatchRun, GroupKey

__all__ = ["run_local"]


def run_local(run: BatchRun, stop: CancelToken | None = None) -> BatchReport:
    """Execute every pending item of ``run``; ``stop`` ends the run after the current denoising step
    (that item stays pending, the manifest stays consistent)."""
    with run.manifest:
        run.run_record("start", executor="local")
        groups = run.groups(run.pending())
        loads_before = run.generator.pool_stats().loads
        try:
            stopped = _run_groups(run, groups, stop)
        finally:
            run.report.model_loads = run.generator.pool_stats().loads - loads_before
        if stopped:
            return _stopped(run)
        run.run_record("end")
    return run.report


def _run_groups(run: BatchRun, groups: dict[GroupKey, list[BatchItem]], stop: CancelToken | None) -> bool:
    """Each group's items in turn; True when stopped."""
    for items in groups.values():
        for item in items:
            if stop is not None and stop.cancelled:
                return True
            run.emit(BatchEvent("start", item))
            t0 = time.perf_counter()
            try:
                result = run.generator.execute(run.generator.plan(run.request(item)), cancel=stop)
            except GenerationCancelled:
                return True
            except MlDiffusionError as exc:
                run.failed(item, exc)
                continue
            run.done(item, result, time.perf_counter() - t0)
    return False


def _stopped(run: BatchRun) -> BatchReport:
    run.report.stopped = True
    run.run_record("stop")
    run.emit(BatchEvent("stopped"))
    return run.report
