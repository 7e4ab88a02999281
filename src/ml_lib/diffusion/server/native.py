"""The native API (``/api/v1``): analyse, plan with its decisions, generate, images (list with filters,
metadata, files, reproduce), feedback, models. The progress stream of a generation is in ``stream``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from .._codec import to_jsonable
from ..errors import UnknownGenerationError
from ..request import GenerationRequest, LoraRequest
from .limits import check_generation, check_name, prompt_names
from .state import ServerState, state
from .worker import Job

if TYPE_CHECKING:
    from ..facade import ImageGenerator
    from ..learning.records import GenerationRecord
    from ..result import CancelToken, GenerationResult

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["native"])
_ID = re.compile(r"^[0-9a-f]{32}$")


class GenerateBody(BaseModel):
    """A :class:`GenerationRequest` without files: ``None`` means "decide for me"."""

    model_config = ConfigDict(extra="forbid")
    prompt: str
    negative_prompt: str = ""
    model: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    schedule: str | None = None
    seed: int | None = None
    batch_size: int | None = None
    loras: list[tuple[str, float]] = Field(default_factory=list)
    preset: str = "balanced"
    auto: bool = True
    learn: bool = True

    def request(self, st: ServerState) -> GenerationRequest:
        """The request, limits checked first."""
        check_generation(
            st.limits, prompt=self.prompt, negative=self.negative_prompt, width=self.width,
            height=self.height, steps=self.steps, batch=self.batch_size or 1,
        )  # fmt: skip
        prompt_names(self.prompt, self.negative_prompt)
        for name, _ in self.loras:
            check_name(name, "lora")
        fields = self.model_dump(exclude={"loras"})
        return GenerationRequest(**fields, loras=tuple(LoraRequest(n, w) for n, w in self.loras))


class AnalyzeBody(BaseModel):
    """A prompt to analyse."""

    prompt: str


class FeedbackBody(BaseModel):
    """A rating (1-5, "up" or "down") and/or tags, and a note, for one generation."""

    stars: int | str | None = None
    tags: list[str] = Field(default_factory=list)
    note: str | None = None


async def _checked(req: GenerationRequest, st: ServerState) -> GenerationRequest:
    """The request, its model (if named) a catalogued checkpoint: a client names no files on the server."""
    from .a1111 import known_checkpoint

    if req.model is not None:
        await known_checkpoint(st, req.model)
    return req


@router.post("/analyze")
async def analyze(body: AnalyzeBody, st: ServerState = Depends(state)) -> Any:
    """What the prompt asks for (content type, styles, aspect …)."""
    check_generation(st.limits, prompt=body.prompt, negative="", width=None, height=None, steps=None, batch=1)
    return to_jsonable(await st.worker.call(lambda g: g.analyze(body.prompt)))


@router.post("/plan")
async def plan(body: GenerateBody, st: ServerState = Depends(state)) -> Any:
    """The plan the request would run, with every decision and its reason; nothing is generated."""
    req = await _checked(body.request(st), st)
    return (await st.worker.call(lambda g: g.plan(req))).to_dict()


async def run_generation(
    st: ServerState, req: GenerationRequest, job: str | Job = "generate"
) -> dict[str, Any]:
    """Queue ``req`` on the worker; the generate answer: id, seeds, image URLs and the plan."""

    def work(g: ImageGenerator, on_step: Any, cancel: CancelToken) -> GenerationResult:
        return g.generate(req, on_step=on_step, cancel=cancel)

    result = await st.worker.generate(job, work)
    gid = result.generation_id
    return {
        "id": gid,
        "seeds": list(result.seeds),
        "images": [f"/api/v1/images/{gid}/{i}" for i in range(len(result.paths))],
        "plan": result.plan.to_dict(),
    }


@router.post("/generate")
async def generate(body: GenerateBody, st: ServerState = Depends(state)) -> dict[str, Any]:
    """Generate and save; returns the generation id, seeds and image URLs (``/generate/stream``: the same
    with server-sent progress events)."""
    return await run_generation(st, await checked_request(body, st))


async def checked_request(body: GenerateBody, st: ServerState) -> GenerationRequest:
    """The body's request, limits and model name checked (nothing is queued)."""
    return await _checked(body.request(st), st)


@router.get("/images")
async def images(
    st: ServerState = Depends(state),
    limit: int = Query(50, ge=1, le=1000),
    content_type: str | None = None,
    min_stars: int | None = Query(None, ge=1, le=5),
    tag: str | None = Query(None, max_length=64),
    model: str | None = Query(None, max_length=256),
) -> list[Any]:
    """Recorded generations, newest first, with their metadata; filter by content type, minimum rating,
    tag (case-insensitive) and model name."""
    filtered = min_stars is not None or tag or model
    entries = await st.worker.call(
        lambda g: g.history(None if filtered else limit, content_type=content_type)
    )
    out = [_entry(e.record, e.stars, e.tags) for e in entries]
    if min_stars is not None:
        out = [e for e in out if e["stars"] is not None and e["stars"] >= min_stars]
    if tag:
        out = [e for e in out if tag.strip().lower() in {t.lower() for t in e["tags"]}]
    if model:
        out = [e for e in out if e["model"] == model]
    return out[:limit]


def _entry(record: GenerationRecord, stars: int | None, tags: tuple[str, ...]) -> dict[str, Any]:
    plan = json.loads(record.plan_json)
    settings = {k: plan.get(k) for k in ("negative_prompt", "width", "height", "steps", "cfg_scale",
                                         "sampler", "schedule", "seed", "seeds", "clip_skip")}  # fmt: skip
    loras = [{"name": lo.get("name"), "weight": lo.get("unet_weight")} for lo in plan.get("loras") or ()]
    return {
        "id": record.id, "created": record.created, "prompt": record.prompt, "stars": stars,
        "tags": list(tags), "images": [f"/api/v1/images/{record.id}/{i}" for i in range(len(record.outputs))],
        "model": (plan.get("model") or {}).get("name"), "family": record.context.family,
        "content_type": record.context.content_type, **settings, "loras": loras,
        "request": json.loads(record.request_json) if record.request_json else None,
    }  # fmt: skip


async def _record(st: ServerState, gid: str) -> GenerationRecord:
    if not _ID.match(gid):
        raise UnknownGenerationError(f"{gid!r} is not a generation id (32 hex digits).")
    return await st.worker.call(lambda g: g.learning.find(gid))


@router.get("/images/{gid}")
async def image_metadata(gid: str, st: ServerState = Depends(state)) -> Any:
    """One generation's record: plan, request, values, outputs, timings."""
    return to_jsonable(await _record(st, gid))


@router.get("/images/{gid}/{index}", response_class=FileResponse)
async def image_file(gid: str, index: int, st: ServerState = Depends(state)) -> FileResponse:
    """The ``index``-th image file of a generation (only files the history recorded are served)."""
    record = await _record(st, gid)
    if not 0 <= index < len(record.outputs):
        raise UnknownGenerationError(
            f"Generation {gid} has {len(record.outputs)} image(s); no index {index}."
        )
    return FileResponse(record.outputs[index].path)


@router.post("/images/{gid}/feedback")
async def feedback(gid: str, body: FeedbackBody, st: ServerState = Depends(state)) -> Any:
    """Rate and/or tag a generation (feeds the learner); tags alone leave the rating as it was."""
    await _record(st, gid)
    stars, tags = body.stars, tuple(body.tags)
    if stars is None:
        return to_jsonable(await st.worker.call(lambda g: g.learning.tag(gid, tags, body.note)))
    return to_jsonable(await st.worker.call(lambda g: g.rate(gid, stars, tags, body.note)))


@router.post("/images/{gid}/reproduce")
async def reproduce(gid: str, st: ServerState = Depends(state)) -> dict[str, Any]:
    """Regenerate a generation's first image from the plan embedded in it; ``identical`` says whether the
    new pixels equal the old."""
    record = await _record(st, gid)
    if not record.outputs:
        raise UnknownGenerationError(f"Generation {gid} has no image file to reproduce.")
    source = record.outputs[0].path

    def work(g: ImageGenerator, _on_step: Any, _cancel: CancelToken) -> GenerationResult:
        return g.reproduce(source)

    result = await st.worker.generate("reproduce", work)
    new = result.generation_id
    return {
        "id": new, "seeds": list(result.seeds), "plan": result.plan.to_dict(),
        "images": [f"/api/v1/images/{new}/{i}" for i in range(len(result.paths))],
        "identical": bool(result.paths) and _same_pixels(source, result.paths[0]),
    }  # fmt: skip


def _same_pixels(a: str | Path, b: str | Path) -> bool:
    from PIL import Image

    with Image.open(a) as first, Image.open(b) as second:
        return first.size == second.size and first.tobytes() == second.convert(first.mode).tobytes()


@router.get("/models")
async def models(st: ServerState = Depends(state), kind: str | None = None) -> list[Any]:
    """Catalogued models (plus built-ins), optionally of one kind."""
    from ..catalog.records import ModelKind
    from ..resolve.known import KnownModels

    kinds = (ModelKind(kind),) if kind else tuple(ModelKind)
    records = await st.worker.call(lambda g: KnownModels(g.catalog()).usable(kinds))
    return [{"name": r.name, "kind": r.kind.value, "family": r.family.value, "path": r.path} for r in records]


@router.post("/models/scan")
async def scan(st: ServerState = Depends(state)) -> Any:
    """Rescan the model folders."""
    return to_jsonable(await st.worker.call(lambda g: g.catalog().scan()))


@router.get("/pool")
async def pool(st: ServerState = Depends(state)) -> Any:
    """The model pool shared by every request: hits, misses, loads, evictions, bytes held and budgets."""
    return to_jsonable(await st.worker.call(lambda g: g.pool_stats()))
