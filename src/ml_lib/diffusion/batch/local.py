"""Run a batch in this process: one model group after another, through the generator's own pool."""

from __future__ import annotations

import time

from ..errors import GenerationCancelled, MlDiffusionError
from ..result import CancelToken
from .runner import BatchEvent, BatchReport, BatchRun, group_key

__all__ = ["run_local"]


def run_local(run: BatchRun, stop: CancelToken | None = None) -> BatchReport:
    """Execute every pending item of ``run``; ``stop`` ends the run after the current denoising step
    (that item stays pending, the manifest stays consistent)."""
    with run.manifest:
        run.run_record("start", executor="local")
        groups = run.groups(run.pending())
        last_model: str | None = None
        for items in groups.values():
            for item in items:
                if stop is not None and stop.cancelled:
                    return _stopped(run)
                run.emit(BatchEvent("start", item))
                t0 = time.perf_counter()
                try:
                    plan = run.generator.plan(run.request(item))
                    if group_key(plan)[0] != last_model:
                        run.report.model_loads += 1
                        last_model = group_key(plan)[0]
                    result = run.generator.execute(plan, cancel=stop)
                except GenerationCancelled:
                    return _stopped(run)
                except MlDiffusionError as exc:
                    run.failed(item, exc)
                    continue
                run.done(item, result, time.perf_counter() - t0)
        run.run_record("end")
    return run.report


def _stopped(run: BatchRun) -> BatchReport:
    run.report.stopped = True
    run.run_record("stop")
    run.emit(BatchEvent("stopped"))
    return run.report
