"""The server's worker queue and error map, without a model: FIFO order, cancellation, statuses."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

pytest.importorskip("fastapi")

from ml_lib.diffusion import errors as e
from ml_lib.diffusion.result import CancelToken, StepInfo
from ml_lib.diffusion.server.errors import status_for
from ml_lib.diffusion.server.worker import Job, Worker


class FakeGenerator:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_jobs_run_in_arrival_order_and_cancellation_frees_them() -> None:
    worker = Worker(FakeGenerator())  # type: ignore[arg-type]
    order: list[str] = []
    release = threading.Event()
    tokens: list[CancelToken] = []

    def job(name: str) -> Any:
        def run(_g: object, on_step: Any, token: CancelToken) -> str:
            tokens.append(token)
            on_step(StepInfo(1, 4))
            if name == "first":
                assert release.wait(10)
            order.append(name)
            return name

        return run

    async def scenario() -> None:
        first = asyncio.ensure_future(worker.generate("a", job("first")))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(worker.generate("b", job(n))) for n in ("second", "dropped", "third")]
        await asyncio.sleep(0.05)
        assert worker.progress.queued == 3 and worker.progress.job == "a" and worker.progress.fraction == 0.25
        queued[1].cancel()  # its client went away while it waited
        await asyncio.sleep(0.05)
        assert worker.progress.queued == 2
        release.set()
        assert await first == "first"
        assert [await queued[0], await queued[2]] == ["second", "third"]
        assert worker.progress.queued == 0 and worker.progress.job == ""
        release.clear()
        running = asyncio.ensure_future(worker.generate("c", job("first")))
        await asyncio.sleep(0.05)
        running.cancel()  # a running job's client went away: its token is set
        await asyncio.sleep(0.05)
        assert tokens[-1].cancelled
        release.set()

    asyncio.run(scenario())
    assert order[:3] == ["first", "second", "third"] and "dropped" not in order
    worker.close()


def test_queue_position_and_throttled_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker(FakeGenerator())  # type: ignore[arg-type]
    release = threading.Event()
    made: list[int] = []
    clock = [100.0]
    monkeypatch.setattr("ml_lib.diffusion.server.worker._clock", lambda: clock[0])

    def steps(_g: object, on_step: Any, _token: CancelToken) -> None:
        assert release.wait(10)
        for step in range(1, 5):
            clock[0] += 0.3  # a step every 0.3 s: previews at steps 1 and 3 only (every >= 0.5 s)
            on_step(StepInfo(step, 4, lambda step=step: made.append(step) or b"png%d" % step))

    async def scenario() -> None:
        notified: list[int] = []
        first = Job("a")
        second = Job("b", notify=lambda: notified.append(second.step))
        tasks = [asyncio.ensure_future(worker.generate(j, steps)) for j in (first, second)]
        await asyncio.sleep(0.05)
        assert worker.position(first) == 0 and worker.position(second) == 1  # first runs, second waits
        release.set()
        await asyncio.gather(*tasks)
        assert notified == [0, 1, 2, 3, 4]  # started, then every step
        assert second.preview == b"png3" and second.preview_step == 3 and worker.position(second) == 0
        assert first.preview is None  # nobody streamed or polled it: no previews were made
        worker.watch()  # a /progress poll: the next job is watched without streaming
        third = Job("c")
        await worker.generate(third, steps)
        assert third.preview == b"png3"

    asyncio.run(scenario())
    assert made == [1, 3, 1, 3]
    worker.close()


def test_interrupt_sets_the_running_token_only() -> None:
    worker = Worker(FakeGenerator())  # type: ignore[arg-type]
    assert worker.interrupt() is False
    worker.close()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (e.UnknownSamplerError("x"), 422),
        (e.RequestError("x"), 422),
        (e.InputImageError("x"), 400),
        (e.ModelNotFoundError("x"), 404),
        (e.UnknownGenerationError("x"), 404),
        (e.AmbiguousModelError("x"), 409),
        (e.GenerationCancelled("x"), 409),
        (e.OfflineError("x"), 503),
        (e.GenerationError("x"), 500),
        (e.DiskFullError("x"), 507),
    ],
)
def test_error_statuses(error: e.MlDiffusionError, status: int) -> None:
    assert status_for(error) == status
