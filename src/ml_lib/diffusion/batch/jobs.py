"""Batch job files: one request per JSONL line, expanded up front into items (pure, no torch).

A line is a JSON object with any :class:`GenerationRequest` field; a line ``{"defaults": {...}}`` sets
fields for the lines after it. Expansion, in this order, gives the items the manifest lists:

- wildcards ``{red|blue} car`` in ``prompt`` / ``negative_prompt`` (nested allowed, ``\\{`` ``\\|``
  ``\\}`` for literal characters): every combination, as the Dynamic Prompts extension's combinatorial mode does;
- grids: a scalar field given as a JSON list (``"cfg_scale": [4, 7]``) is an axis; the items are the
  cartesian product of all axes (an X/Y/Z plot);
- ``repeat``: each item N times, the seed advancing by one per repeat when a seed is set.

Seeds: a line's own ``seed`` wins; else ``seed_start + n`` (n = the item's position in the job); else
the planner's random seed. Each item has a key (a hash of its expanded fields, its line number and its
position in the line's expansion) that stays the same across runs, so a re-run skips what the manifest says is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._codec import from_jsonable, to_jsonable
from ..errors import RequestError
from ..request import GenerationRequest

__all__ = ["BatchItem", "JobError", "expand_line", "expand_wildcards", "load_job", "parse_job"]

MAX_ITEMS = 100_000  # a job that expands past this is a typo (an axis too many), not a plan
_LIST_FIELDS = {"loras", "controls", "ip_adapters"}
_FIELDS = {f.name for f in dataclasses.fields(GenerationRequest)}


class JobError(RequestError):
    """A job file that cannot be read or expanded (the line number says where)."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One generation of a batch: its stable key, its position in the job and the request to plan."""

    key: str
    index: int
    line: int
    request: GenerationRequest

    def request_json(self) -> dict[str, Any]:
        """The expanded request as written into the manifest (fields at their defaults omitted)."""
        data = to_jsonable(self.request)
        defaults = to_jsonable(GenerationRequest(prompt=""))
        return {k: v for k, v in data.items() if k == "prompt" or v != defaults.get(k)}


def expand_wildcards(text: str) -> list[str]:
    """Every combination of the ``{a|b|c}`` choices in ``text`` (nested allowed), left to right."""
    out = [""]
    for part in _split_top(text):
        if isinstance(part, str):
            out = [head + part for head in out]
        else:
            choices = [c for choice in part for c in expand_wildcards(choice)]
            out = [head + c for head in out for c in choices]
    return out


def _split_top(text: str) -> list[str | list[str]]:
    """Literal text and top-level brace groups (each the list of its ``|`` choices, still raw)."""
    parts: list[str | list[str]] = []
    literal, depth, current = "", 0, ""
    choices: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in "{}|":
            if depth:
                current += text[i : i + 2]
            else:
                literal += text[i + 1]
            i += 2
            continue
        if c == "{":
            if depth == 0:
                parts.append(literal)
                literal, choices, current = "", [], ""
            else:
                current += c
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                parts.append([*choices, current])
            else:
                current += c
        elif c == "|" and depth == 1:
            choices.append(current)
            current = ""
        elif depth:
            current += c
        else:
            literal += c
        i += 1
    if depth:  # an unclosed brace is text, as written
        literal += "{" + "|".join([*choices, current])
    parts.append(literal)
    return parts


def _axes(fields: Mapping[str, Any]) -> list[tuple[str, list[Any]]]:
    axes: list[tuple[str, list[Any]]] = []
    for name, value in fields.items():
        if name in ("prompt", "negative_prompt") and isinstance(value, str):
            choices = expand_wildcards(value)
            if len(choices) > 1 or choices[0] != value:
                axes.append((name, choices))
        elif isinstance(value, list) and name not in _LIST_FIELDS:
            if not value:
                raise JobError(f"{name} is an empty list: a grid axis needs at least one value")
            axes.append((name, value))
    return axes


def expand_line(fields: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The grid of one line's fields (wildcards and list-valued fields as axes), in row-major order."""
    axes = _axes(fields)
    names = [name for name, _ in axes]
    for combo in itertools.product(*(values for _, values in axes)):
        yield {**fields, **dict(zip(names, combo, strict=True))}


def parse_job(
    text: str, *, repeat: int = 1, seed_start: int | None = None, defaults: Mapping[str, Any] | None = None
) -> list[BatchItem]:
    """Expand a JSONL job into items; a bad line raises :class:`JobError` naming the line."""
    if repeat < 1:
        raise JobError(f"--repeat must be at least 1, got {repeat}")
    base: dict[str, Any] = dict(defaults or {})
    items: list[BatchItem] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise JobError(f"line {lineno}: not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(data, dict):
            raise JobError(f"line {lineno}: each line must be a JSON object, got {type(data).__name__}")
        if set(data) == {"defaults"}:
            if not isinstance(data["defaults"], dict):
                raise JobError(f"line {lineno}: defaults must be a JSON object")
            base.update(data["defaults"])
            continue
        fields = {**base, **data}
        unknown = sorted(set(fields) - _FIELDS)
        if unknown:
            raise JobError(f"line {lineno}: unknown field(s) {', '.join(unknown)}")
        for n, combo in enumerate(expand_line(fields)):
            for r in range(repeat):
                items.append(_item(combo, lineno, n, r, len(items), seed_start))
                if len(items) > MAX_ITEMS:
                    raise JobError(f"the job expands to more than {MAX_ITEMS:,} items (line {lineno})")
    return items


def _item(
    fields: dict[str, Any], lineno: int, n: int, r: int, index: int, seed_start: int | None
) -> BatchItem:
    fields = dict(fields)
    if fields.get("seed") is not None:
        fields["seed"] = int(fields["seed"]) + r
    elif seed_start is not None:
        fields["seed"] = seed_start + index
    try:
        request = from_jsonable(GenerationRequest, fields, error=JobError, strict=True)
    except JobError as exc:
        raise JobError(f"line {lineno}: {exc}") from None
    identity = json.dumps([fields, lineno, n, r], sort_keys=True, default=str)
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return BatchItem(key, index, lineno, request)


def load_job(path: Path, **options: Any) -> list[BatchItem]:
    """Read and expand the job file at ``path`` (see :func:`parse_job` for ``options``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"cannot read the job file {path}: {exc}") from None
    items = parse_job(text, **options)
    if not items:
        raise JobError(f"{path} holds no request (one JSON object per line)")
    return items
