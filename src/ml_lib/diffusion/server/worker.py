"""One generation worker behind a FIFO queue: every call into the shared ImageGenerator runs on it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..result import CancelToken, StepInfo

if TYPE_CHECKING:
    from ..facade import ImageGenerator

__all__ = ["PREVIEW_COST_FACTOR", "PREVIEW_INTERVAL", "WATCH_WINDOW", "Job", "Progress", "Worker"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Seconds between two live previews of one job (the first step watched always makes one) …
PREVIEW_INTERVAL = 0.5
#: … and at least this many times the last preview's cost, so previews take at most ~2% of a job.
PREVIEW_COST_FACTOR = 50
#: Seconds a ``/progress`` poll counts as someone watching the running job (previews are made only then,
#: or for a job whose progress is streamed).
WATCH_WINDOW = 5.0


def _clock() -> float:
    """Seconds on a monotonic clock (one place, so tests can drive the preview pacing)."""
    return time.monotonic()


def _log_failure(future: Future[None]) -> None:
    error = None if future.cancelled() else future.exception()
    if error is not None:
        log.warning("warming up the prompt analyzer failed: %s", error)


@dataclass(slots=True, eq=False)
class Job:
    """One generation: its place in the queue, its steps, its latest preview (written by the worker thread).

    ``notify``, when set, is called on the worker thread whenever the job starts or steps (the SSE route
    passes one that wakes its event loop).
    """

    kind: str
    notify: Callable[[], None] | None = None
    token: CancelToken = field(default_factory=CancelToken)
    step: int = 0
    total: int = 0
    started: float = 0.0  # _clock() when it began running; 0 while queued
    preview: bytes | None = None  # PNG of the latest preview
    preview_step: int = 0
    _preview_at: float = 0.0  # the next preview is due then

    @property
    def fraction(self) -> float:
        """0..1 of the job's steps (0 before its first step)."""
        return self.step / self.total if self.total else 0.0

    @property
    def eta(self) -> float:
        """Seconds left, estimated from the pace so far (0 when unknown)."""
        if not self.step or not self.total or not self.started:
            return 0.0
        elapsed = _clock() - self.started
        return elapsed / self.step * (self.total - self.step)

    def on_step(self, info: StepInfo, *, watched: bool = True) -> None:
        """Record a step; when ``watched``, take a preview on the first such step and then at most every
        PREVIEW_INTERVAL seconds (or PREVIEW_COST_FACTOR times its own cost, if more)."""
        self.step, self.total = info.step, info.total
        now = _clock()
        if info.preview is not None and watched and (self.preview is None or now >= self._preview_at):
            self.preview, self.preview_step = info.preview(), info.step
            cost = _clock() - now
            self._preview_at = now + max(PREVIEW_INTERVAL, PREVIEW_COST_FACTOR * cost)
        self._notify()

    def _notify(self) -> None:
        if self.notify is not None:
            self.notify()


@dataclass(slots=True)
class Progress:
    """What ``/progress`` reports: the running job (if any), how many wait, whether it was interrupted."""

    current: Job | None = None
    queued: int = 0
    interrupted: bool = False

    @property
    def job(self) -> str:
        """The running job's kind ("" when idle)."""
        return self.current.kind if self.current is not None else ""

    @property
    def step(self) -> int:
        """The running job's last step (0 when idle)."""
        return self.current.step if self.current is not None else 0

    @property
    def total(self) -> int:
        """The running job's step count (0 when idle or not yet known)."""
        return self.current.total if self.current is not None else 0

    @property
    def fraction(self) -> float:
        """0..1 of the running job's steps (0 when idle)."""
        return self.current.fraction if self.current is not None else 0.0

    @property
    def eta(self) -> float:
        """Seconds left of the running job (0 when idle or unknown)."""
        return self.current.eta if self.current is not None else 0.0

    @property
    def preview(self) -> bytes | None:
        """PNG of the running job's latest preview."""
        return self.current.preview if self.current is not None else None


class Worker:
    """Runs jobs one at a time, in arrival order, on one thread that owns the generator."""

    def __init__(self, generator: ImageGenerator) -> None:
        self.generator = generator
        self.progress = Progress()
        self._waiting: list[Job] = []
        self._watched_until = 0.0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml-diffusion-worker")

    def warm_up(self) -> Future[None]:
        """Load the generator's prompt analyzer on the worker now, so the first request does not pay for it
        (a request sent meanwhile queues behind it); a failure is logged, and the first prompt tries again."""
        future = self._pool.submit(self.generator.warm_up)
        future.add_done_callback(_log_failure)
        return future

    async def call(self, fn: Callable[[ImageGenerator], T]) -> T:
        """Run ``fn(generator)`` on the worker (after every job queued before it)."""
        return await asyncio.wrap_future(self._pool.submit(fn, self.generator))

    def watch(self) -> None:
        """Someone polls the progress: make live previews of the running job for WATCH_WINDOW seconds."""
        self._watched_until = _clock() + WATCH_WINDOW

    def position(self, job: Job) -> int:
        """1 for the next job to run, 2 for the one after …; 0 once ``job`` runs (or is gone)."""
        with self._lock:
            return next((i + 1 for i, j in enumerate(self._waiting) if j is job), 0)

    async def generate(
        self,
        job: str | Job,
        fn: Callable[[ImageGenerator, Callable[[StepInfo], None], CancelToken], T],
    ) -> T:
        """Run a generation job with progress reporting and a cancel token ``/interrupt`` can set.

        When the caller goes away (its task is cancelled: the client disconnected), a queued job is
        dropped and a running one is cancelled between two steps.
        """
        job = Job(job) if isinstance(job, str) else job
        started = threading.Event()
        with self._lock:
            self._waiting.append(job)
            self.progress.queued = len(self._waiting)

        def run(generator: ImageGenerator) -> T:
            with self._lock:
                started.set()
                self._waiting.remove(job)
                self.progress.queued = len(self._waiting)
                self.progress.current, self.progress.interrupted = job, False
                job.started = _clock()
            job._notify()

            def on_step(info: StepInfo) -> None:
                job.on_step(info, watched=job.notify is not None or _clock() < self._watched_until)

            try:
                return fn(generator, on_step, job.token)
            finally:
                with self._lock:
                    self.progress.current = None

        future = self._pool.submit(run, self.generator)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            with self._lock:
                if future.cancel() and not started.is_set():
                    self._waiting.remove(job)
                    self.progress.queued = len(self._waiting)
            job.token.cancel()
            raise

    def interrupt(self) -> bool:
        """Stop the running job between two steps; True when one was running."""
        with self._lock:
            job = self.progress.current
            if job is None:
                return False
            self.progress.interrupted = True
        job.token.cancel()
        return True

    def close(self) -> None:
        """Let the running job finish, drop the queued ones and close the generator."""
        self.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.generator.close()
