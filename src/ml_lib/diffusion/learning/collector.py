"""The record step: an executed plan (with the request as given and what we would have chosen) → a record.

"Recommended against used" compares the plan with the *automatic* plan, the one the same request gets with
no parameter set and no LoRA named: each learnable field the user set to another value, and each LoRA
added, removed or reweighted, is an :class:`Override`.

"Regenerated with changes" is detected, not declared: when a generation's prompt, negative prompt and
model equal those of a generation recorded less than :data:`EDIT_WINDOW` seconds before, and some
learnable value differs, an EDIT feedback event links the two (old value → new value per changed field).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..plan import GenerationPlan, Source
from ..prompt.analysis import PromptAnalysis
from ..request import GenerationRequest
from .records import (
    Feedback,
    FeedbackKind,
    GenerationRecord,
    LearningContext,
    OutputFile,
    Override,
    new_id,
)

__all__ = [
    "EDIT_WINDOW",
    "LEARNABLE",
    "automatic_request",
    "context_of",
    "detect_edit",
    "make_record",
    "output_files",
    "overrides",
    "plan_values",
    "request_json",
    "sha256_file",
]

#: Seconds within which a same-prompt generation with other values counts as "regenerated with changes".
EDIT_WINDOW = 30 * 60
#: Plan fields the learner learns, and the request fields that set them.
LEARNABLE = {
    "size": ("width", "height"),
    "steps": ("steps",),
    "cfg_scale": ("cfg_scale",),
    "sampler": ("sampler", "schedule"),
}
Value = str | int | float


def context_of(family: str, analysis: PromptAnalysis | None) -> LearningContext:
    """The learning context of a plan: model family, content type, first style cue."""
    return LearningContext.of(family, analysis)


def plan_values(plan: GenerationPlan) -> tuple[tuple[str, Value], ...]:
    """The learnable values a plan uses: size, steps, cfg_scale, sampler and each LoRA's UNet weight."""
    values: list[tuple[str, Value]] = [
        ("size", f"{plan.width}x{plan.height}"),
        ("steps", plan.steps),
        ("cfg_scale", plan.cfg_scale),
        ("sampler", plan.sampler),
    ]
    values += [(f"lora:{lora.name}", lora.unet_weight) for lora in plan.loras]
    return tuple(values)


def automatic_request(request: GenerationRequest) -> GenerationRequest:
    """``request`` with every learnable field and every named LoRA left to us (the seed is kept)."""
    return dataclasses.replace(
        request,
        loras=(),
        auto=True,
        width=None,
        height=None,
        steps=None,
        cfg_scale=None,
        sampler=None,
        schedule=None,
    )


def overrides(plan: GenerationPlan, automatic: GenerationPlan | None) -> tuple[Override, ...]:
    """What the user changed against the automatic plan (None: unknown, nothing recorded)."""
    if automatic is None:
        return ()
    used, recommended = dict(plan_values(plan)), dict(plan_values(automatic))
    out = []
    for name, fields in LEARNABLE.items():
        by_user = any((d := plan.decision(f)) is not None and d.source is Source.USER for f in fields)
        if by_user and used[name] != recommended[name]:
            out.append(Override(name, recommended[name], used[name]))
    for name in sorted(k for k in {**recommended, **used} if k.startswith("lora:")):
        if used.get(name) != recommended.get(name):
            out.append(Override(name, recommended.get(name), used.get(name)))
    return tuple(out)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    size = getattr(value, "size", None) or getattr(value, "shape", None)
    return f"<{type(value).__name__} {size}>" if size is not None else f"<{type(value).__name__}>"


def request_json(request: GenerationRequest) -> str:
    """The request as the user gave it, as JSON (in-memory images as a short description)."""
    fields = {f.name: _jsonable(getattr(request, f.name)) for f in dataclasses.fields(request)}
    return json.dumps(fields, ensure_ascii=False, sort_keys=True)


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_files(paths: Iterable[Path]) -> tuple[OutputFile, ...]:
    """The written files with their sha256 (absolute paths)."""
    return tuple(OutputFile(str(Path(p).resolve()), sha256_file(Path(p))) for p in paths)


def make_record(
    generation_id: str,
    plan: GenerationPlan,
    request: GenerationRequest | None,
    automatic: GenerationPlan | None,
    analysis: PromptAnalysis | None,
    *,
    outputs: tuple[OutputFile, ...] = (),
    timings: Mapping[str, float] | None = None,
    learned: bool = False,
    now: float | None = None,
) -> GenerationRecord:
    """The history record of one executed plan."""
    return GenerationRecord(
        id=generation_id,
        created=time.time() if now is None else now,
        context=context_of(plan.model.family, analysis),
        prompt=request.prompt if request is not None else plan.prompt,
        plan_json=plan.to_json(),
        request_json=request_json(request) if request is not None else None,
        values=plan_values(plan),
        overrides=overrides(plan, automatic),
        outputs=outputs,
        timings=tuple(sorted((timings or {}).items())),
        device=plan.device,
        learned=learned,
    )


def _same_request(a: GenerationRecord, b: GenerationRecord) -> bool:
    if a.request_json is None or b.request_json is None:
        return False
    ra, rb = json.loads(a.request_json), json.loads(b.request_json)
    return all(ra.get(k) == rb.get(k) for k in ("prompt", "negative_prompt", "model"))


def detect_edit(
    new: GenerationRecord, recent: Iterable[GenerationRecord], *, window: float = EDIT_WINDOW
) -> Feedback | None:
    """An EDIT event when ``new`` regenerates a recent generation's request with other values."""
    for old in recent:  # newest first
        if old.id == new.id or not 0 <= new.created - old.created <= window or not _same_request(old, new):
            continue
        before, after = dict(old.values), dict(new.values)
        changes = tuple(
            Override(k, before.get(k), after.get(k))
            for k in sorted({*before, *after})
            if before.get(k) != after.get(k)
        )
        if not changes:
            return None  # the same values again: a re-roll, not an edit
        return Feedback(new_id(), old.id, new.created, FeedbackKind.EDIT, other_id=new.id, changes=changes)
    return None
