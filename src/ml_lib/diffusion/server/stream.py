"""``POST /api/v1/generate/stream``: a generation with its progress as server-sent events.

Events (each ``data`` is one JSON object): ``queued`` (``position`` in the FIFO queue), ``progress``
(``step``, ``total``, ``progress`` 0..1, ``eta`` seconds, ``preview`` a ``data:image/png;base64`` URL of the
current latents mapped to RGB, or null), then ``done`` (what ``POST /api/v1/generate`` answers) or ``error``
(the JSON error body). A client that disconnects cancels its job, queued or running.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from ..errors import MlDiffusionError
from ..request import GenerationRequest
from .errors import status_for
from .native import GenerateBody, checked_request, run_generation
from .state import ServerState, state
from .worker import Job

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["native"])
_KEEPALIVE = 15.0  # seconds between comment lines while nothing changes (keeps proxies from timing out)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _progress(job: Job) -> dict[str, Any]:
    preview = job.preview
    url = None if preview is None else "data:image/png;base64," + base64.b64encode(preview).decode("ascii")
    return {"step": job.step, "total": job.total, "progress": job.fraction, "eta": round(job.eta, 2),
            "preview": url, "preview_step": job.preview_step}  # fmt: skip


async def _events(st: ServerState, req: GenerationRequest) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:  # called on the worker thread
        loop.call_soon_threadsafe(changed.set)

    job = Job("generate", notify=wake)
    task = asyncio.ensure_future(run_generation(st, req, job))
    try:
        last: tuple[int, int, int] | None = None
        position = 0
        while not task.done():
            if not job.started and (now := st.worker.position(job)) and now != position:
                position = now
                yield _event("queued", {"position": position})
            waiter = asyncio.ensure_future(changed.wait())
            # while queued, look again each second (jobs ahead finishing do not wake this one)
            timeout = _KEEPALIVE if job.started else 1.0
            done, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when="FIRST_COMPLETED")
            waiter.cancel()
            changed.clear()
            if job.started and (job.step, job.total, job.preview_step) != last:
                last = (job.step, job.total, job.preview_step)
                yield _event("progress", _progress(job))
            elif not done and job.started:
                yield ": keep-alive\n\n"
        try:
            result = task.result()
        except MlDiffusionError as exc:
            yield _event(
                "error", {"error": type(exc).__name__, "detail": str(exc), "status": status_for(exc)}
            )
            return
        yield _event("done", result)
    finally:
        if not task.done():  # the client went away: drop or stop the job
            task.cancel()


@router.post("/generate/stream", response_class=StreamingResponse)
async def generate_stream(body: GenerateBody, st: ServerState = Depends(state)) -> StreamingResponse:
    """Generate with progress as server-sent events (``text/event-stream``): ``queued``, ``progress``
    (with a preview image), then ``done`` (ids, seeds, image URLs, plan) or ``error``."""
    req = await checked_request(body, st)  # a bad request is a 4xx before the stream starts
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(st, req), media_type="text/event-stream", headers=headers)
