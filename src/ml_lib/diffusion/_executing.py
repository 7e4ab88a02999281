"""``ImageGenerator.execute``: load (pooled, pinned), run with recovery, watch memory, save, record."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .errors import GenerationCancelled
from .plan import GenerationPlan
from .result import CancelToken, GenerationResult, PhaseTimings, Retry, StepInfo

if TYPE_CHECKING:
    from .engine.pool import LoadedPipeline, PipelinePool
    from .facade import ImageGenerator

_T = TypeVar("_T")

__all__ = ["execute_plan"]


def execute_plan(
    gen: ImageGenerator,
    plan: GenerationPlan,
    *,
    on_step: Callable[[StepInfo], None] | None,
    cancel: CancelToken | None,
    save: bool,
) -> GenerationResult:
    """The body of :meth:`ImageGenerator.execute` (see there)."""
    from .engine.device import check_device

    check_device(plan.device)  # a plan made for other hardware (what-if planning) is refused here
    from .engine.executor import execute
    from .engine.peaks import PhaseMonitor
    from .engine.recovery import forget_frames, run_recovering
    from .learning.records import new_id
    from .output.writer import check_output_dir
    from .resolve import plan_images

    if save:  # before anything loads: a bad --out must not cost a whole generation
        check_output_dir(Path(plan.output_dir))
    gen._resolve_step()
    assert gen._staging is not None and gen._hashes is not None
    gen._staging.commit(plan_images(plan))  # the inputs a dry-run plan only held
    gen._hashes.flush()
    pool = gen._pipelines()
    retries: list[Retry] = []
    monitor = PhaseMonitor(plan.device)
    with monitor:  # peak memory per phase; leaving it collects garbage (also on error or cancel)
        try:
            run = run_recovering(
                plan,
                load=lambda memory: pool.acquire(  # pinned until released
                    plan.model,
                    dtype=plan.dtype,
                    device=plan.device,
                    memory=memory,
                    expected=gen._expected(plan, memory),
                    storage=plan.storage_dtype,
                ),
                run=lambda loaded, memory: _run_with_hires_model(
                    gen,
                    pool,
                    plan,
                    memory,
                    lambda hires_model: execute(
                        loaded,
                        plan,
                        on_step=on_step,
                        cancel=cancel,
                        annotator_dir=gen.settings.annotator_dir,
                        refiner=gen._refiner(plan, memory),
                        monitor=monitor,
                        retries=retries,
                        hires_model=hires_model,
                    ),
                ),
                release=pool.release,
                drop=lambda _loaded: pool.clear(),  # an out-of-memory frees every pooled pipeline
                monitor=monitor,
                retries=retries,
            )
        except GenerationCancelled as exc:
            forget_frames(exc)  # the cancelled run's tensors go now, not when the caller drops the error
            raise
    out, load = run.output, run.load_seconds
    t1 = time.perf_counter()
    gid = new_id()
    paths = gen._save(plan, out.images, plan.seeds, gid, retries=tuple(retries)) if save else ()
    timings = PhaseTimings(load, out.encode, out.denoise, out.decode, time.perf_counter() - t1)
    result = GenerationResult(
        out.images,
        plan.seeds,
        plan,
        paths,
        timings,
        gid,
        retries=tuple(retries),
        memory=monitor.report(),
    )
    if gen._recording:
        gen._record(result)
    return result


def _run_with_hires_model(
    gen: ImageGenerator,
    pool: PipelinePool,
    plan: GenerationPlan,
    memory: str,
    run: Callable[[LoadedPipeline | None], _T],
) -> _T:
    """``run(hires model)``: the plan's hires checkpoint from the same pool as its model, pinned while the
    run uses it (None without one), prepared for the same ``memory`` strategy."""
    checkpoint = plan.hires.checkpoint if plan.hires is not None else None
    if checkpoint is None:
        return run(None)
    from .planning.pool_budget import expected_bytes

    planned = gen._planned.get(plan)
    params = planned.resolved.hires_checkpoint_params if planned is not None else None
    stored = plan.storage_dtype or plan.dtype
    expected = (
        None
        if params is None  # components unknown: counted as one, none of it in fp8 (the larger estimate)
        else expected_bytes(
            checkpoint.family, (0, params, 0), dtype=stored, device=plan.device, strategy=memory
        )
    )
    loaded = pool.acquire(
        checkpoint,
        dtype=plan.dtype,
        device=plan.device,
        memory=memory,
        expected=expected,
        storage=plan.storage_dtype,
    )
    try:
        return run(loaded)
    finally:
        pool.release(loaded)
