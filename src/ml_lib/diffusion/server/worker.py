"""One generation worker behind a FIFO queue: every call into the shared ImageGenerator runs on it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..result import CancelToken, StepInfo

if TYPE_CHECKING:
    from ..facade import ImageGenerator

__all__ = ["Progress", "Worker"]

T = TypeVar("T")


@dataclass(slots=True)
class Progress:
    """What the running job has done so far (read by ``/progress``; written by the worker thread)."""

    job: str = ""
    step: int = 0
    total: int = 0
    started: float = 0.0
    queued: int = 0
    interrupted: bool = False
    cancel: CancelToken | None = field(default=None)

    @property
    def fraction(self) -> float:
        """0..1 of the running job's steps (0 when idle)."""
        return self.step / self.total if self.total else 0.0

    @property
    def eta(self) -> float:
        """Seconds left, estimated from the pace so far (0 when idle or unknown)."""
        if not self.step or not self.total:
            return 0.0
        elapsed = time.monotonic() - self.started
        return elapsed / self.step * (self.total - self.step)


class Worker:
    """Runs jobs one at a time, in arrival order, on one thread that owns the generator."""

    def __init__(self, generator: ImageGenerator) -> None:
        self.generator = generator
        self.progress = Progress()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml-diffusion-worker")

    async def call(self, fn: Callable[[ImageGenerator], T]) -> T:
        """Run ``fn(generator)`` on the worker (after every job queued before it)."""
        return await asyncio.wrap_future(self._pool.submit(fn, self.generator))

    async def generate(
        self, job: str, fn: Callable[[ImageGenerator, Callable[[StepInfo], None], CancelToken], T]
    ) -> T:
        """Run a generation job with progress reporting and a cancel token ``/interrupt`` can set.

        When the caller goes away (its task is cancelled: the client disconnected), a queued job is
        dropped and a running one is cancelled between two steps.
        """
        token = CancelToken()
        started = threading.Event()
        with self._lock:
            self.progress.queued += 1

        def run(generator: ImageGenerator) -> T:
            with self._lock:
                started.set()
                self.progress.queued -= 1
                self.progress.job, self.progress.step, self.progress.total = job, 0, 0
                self.progress.started, self.progress.cancel = time.monotonic(), token
                self.progress.interrupted = False

            def on_step(info: StepInfo) -> None:
                self.progress.step, self.progress.total = info.step, info.total

            try:
                return fn(generator, on_step, token)
            finally:
                with self._lock:
                    self.progress.job, self.progress.step, self.progress.total = "", 0, 0
                    self.progress.cancel = None

        future = self._pool.submit(run, self.generator)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            with self._lock:
                if future.cancel() and not started.is_set():
                    self.progress.queued -= 1
            token.cancel()
            raise

    def interrupt(self) -> bool:
        """Stop the running job between two steps; True when one was running."""
        with self._lock:
            token = self.progress.cancel
            if token is None:
                return False
            self.progress.interrupted = True
        token.cancel()
        return True

    def close(self) -> None:
        """Let the running job finish, drop the queued ones and close the generator."""
        self.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.generator.close()
