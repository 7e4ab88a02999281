"""A ComfyUI conditioning graph → one A1111 prompt: the shapes :mod:`..comfyui_prompts` writes, read back.

- ``ConditioningConcat`` of two texts → ``a BREAK b`` (chains: ``a BREAK b BREAK c``).
- ``ConditioningSetTimestepRange`` of two texts, ``[0, p]`` and ``[p, 1]``, merged by ``ConditioningCombine``
  → ``[a:b:when]`` with ``when`` the step number (A1111's call counter) of the last call ComfyUI makes at
  a sigma at or above ``percent_to_sigma(p)``: computed for the graph's ``KSampler`` (sampler, scheduler,
  steps, denoise) by :mod:`..comfyui_sigmas` with ``ModelSamplingDiscrete`` (SD 1.x, 2.x, SDXL); the common
  words before and after are kept outside the brackets. More ranges (alternation, nested edits) are not
  read back.
- ``ConditioningSetAreaStrength`` parts combined → ``a :w1 AND b :w2`` with the strengths as weights, and
  the KSampler's CFG divided by their sum (ComfyUI averages by strength where A1111 sums weighted; the
  writer multiplied the CFG by the sum).
- ``ConditioningZeroOut`` of ``""`` → an empty prompt (our SDXL default conditions on zeros for it).

Anything else gives a :class:`ReadPrompt` without text and with the reason.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..comfyui_sigmas import Timeline
from ._values import as_float, as_text

__all__ = ["MAPPED", "ConditioningReader", "ReadPrompt", "read_prompt"]

#: Conditioning nodes read into the prompt text here (not listed as unmapped when read).
MAPPED = frozenset(
    {
        "ConditioningCombine",
        "ConditioningConcat",
        "ConditioningSetTimestepRange",
        "ConditioningSetAreaStrength",
        "ConditioningZeroOut",
    }
)
_MAX_DEPTH = 200
_MAX_VISITS = 2000  # node visits per prompt: a hostile graph can share inputs to blow a tree up
_SYNTAX = re.compile(r"[()\[\]:|\\]")


class ConditioningReader(Protocol):
    """The graph reader's part used here (:class:`.comfy._Reader`)."""

    graph: dict[str, dict[str, Any]]

    def value(self, node_id: str, name: str) -> Any: ...

    def note(self, node_id: str, reason: str, value: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class ReadPrompt:
    """A prompt read back: the text (None when it cannot be), the sum of the AND strengths the KSampler's
    CFG was multiplied by (None without AND), and why not."""

    text: str | None
    weight_sum: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _Entry:
    text: str
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0

    @property
    def whole(self) -> bool:
        return (self.start, self.end) == (0.0, 1.0)


class _Unreadable(ValueError):
    """A conditioning shape that has no A1111 prompt here."""


def _link(value: Any) -> tuple[str, int] | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
        return str(value[0]), value[1]
    return None


def _number(reader: ConditioningReader, node_id: str, name: str) -> float:
    value = as_float(reader.value(node_id, name))
    if value is None:
        raise _Unreadable(f"{reader.graph[node_id]['class_type']}'s {name} is not a number the graph states")
    return value


def _entries(
    reader: ConditioningReader, link: tuple[str, int] | None, visits: list[int], depth: int = 0
) -> list[_Entry]:
    """The conditioning a link carries, as ComfyUI's nodes build the list (text, strength, range);
    ``visits`` counts the nodes visited for this prompt."""
    if link is None or link[0] not in reader.graph or depth > _MAX_DEPTH:
        raise _Unreadable("the conditioning does not lead to a text encoder")
    visits[0] += 1
    if visits[0] > _MAX_VISITS:
        raise _Unreadable(f"the conditioning visits more than {_MAX_VISITS} nodes; not read back")
    node_id, output = link
    kind = reader.graph[node_id]["class_type"]

    def follow(name: str) -> list[_Entry]:
        return _entries(reader, _link(reader.graph[node_id]["inputs"].get(name)), visits, depth + 1)

    if kind == "CLIPTextEncode":
        text = as_text(reader.value(node_id, "text"))
        if text is None:
            raise _Unreadable("the prompt text comes from a node that is not read")
        return [_Entry(_escaped(text))]
    if kind == "CLIPTextEncodeSDXL":
        text_g, text_l = as_text(reader.value(node_id, "text_g")), as_text(reader.value(node_id, "text_l"))
        if text_l and text_l != text_g:
            reader.note(
                node_id, "a separate text for SDXL's second encoder is not supported; text_g is used", text_l
            )
        if text_g is None:
            raise _Unreadable("the prompt text comes from a node that is not read")
        return [_Entry(_escaped(text_g))]
    if kind == "ConditioningCombine":
        return follow("conditioning_1") + follow("conditioning_2")
    if kind == "ConditioningConcat":
        to, frm = follow("conditioning_to"), follow("conditioning_from")
        if len(to) != 1 or len(frm) != 1 or not (to[0].whole and frm[0].whole) or to[0].strength != 1.0:
            raise _Unreadable("a ConditioningConcat of combined, ranged or weighted conditioning")
        return [_Entry(f"{to[0].text.strip()} BREAK {frm[0].text.strip()}")]
    if kind == "ConditioningSetAreaStrength":
        strength = _number(reader, node_id, "strength")
        return [dataclasses.replace(e, strength=strength) for e in follow("conditioning")]
    if kind == "ConditioningSetTimestepRange":
        start, end = _number(reader, node_id, "start"), _number(reader, node_id, "end")
        return [dataclasses.replace(e, start=start, end=end) for e in follow("conditioning")]
    if kind == "ConditioningZeroOut":
        inner = follow("conditioning")
        if inner != [_Entry("")]:
            raise _Unreadable("a ConditioningZeroOut of a text (zeros are not a prompt)")
        return inner
    if "ControlNet" in kind:
        reader.note(node_id, "a ControlNet needs its control image, which the file does not carry")
        return follow(
            "negative" if output == 1 and "negative" in reader.graph[node_id]["inputs"] else "positive"
        )
    raise _Unreadable(f"a {kind} node in the conditioning is not read")


def _factored(a: str, b: str) -> tuple[str, str, str, str]:
    """(before, a', b', after): the text ``a`` and ``b`` share at their start and end, cut at word
    boundaries, kept outside the edit when it holds no prompt syntax."""
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    while head and a[head - 1].isalnum() and not all(head == len(t) or not t[head].isalnum() for t in (a, b)):
        head -= 1  # the shared start ends inside a word
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    while (
        tail
        and a[len(a) - tail].isalnum()
        and not all(len(t) - tail == head or not t[-tail - 1].isalnum() for t in (a, b))
    ):
        tail -= 1  # the shared end starts inside a word
    before, after = a[:head], a[len(a) - tail :]
    cores = [a[head : len(a) - tail], b[head : len(b) - tail]]
    if _SYNTAX.search(before + after):
        return "", a, b, ""
    lead = {c[: len(c) - len(c.lstrip())] for c in cores if c}
    if len(lead) == 1:  # the space between the shared words and the edit stays outside the brackets
        before += lead.pop()
        cores = [c.lstrip() for c in cores]
    trail = {c[len(c.rstrip()) :] for c in cores if c}
    if len(trail) == 1:
        after = trail.pop() + after
        cores = [c.rstrip() for c in cores]
    return before, cores[0], cores[1], after


def _edit(first: _Entry, second: _Entry, line: Callable[[], Timeline]) -> str:
    """``[a:b:when]`` for two texts switching at ``first.end``."""
    if not (first.start == 0.0 and first.end == second.start and second.end == 1.0):
        raise _Unreadable("step ranges that do not split the run in two")
    timeline = line()
    switch = timeline.sampling.percent_to_sigma(first.end)
    before = [i for i, sigma in enumerate(timeline.calls) if sigma >= switch]
    if not before or before[-1] == len(timeline.calls) - 1:
        raise _Unreadable("a step range that switches before the first or after the last sampler call")
    head, a, b, tail = _factored(first.text.strip(), second.text.strip())
    when = before[-1]
    edit = f"[{a}::{when}]" if not b else f"[{b}:{when}]" if not a else f"[{a}:{b}:{when}]"
    return f"{head}{edit}{tail}"


def _parts(entries: list[_Entry], line: Callable[[], Timeline]) -> list[tuple[str, float]]:
    """(text, strength) of each AND part: a whole text, or two ranged texts of one strength."""
    parts: list[tuple[str, float]] = []
    pending: list[_Entry] = []
    for entry in entries:
        if entry.whole and not pending:
            parts.append((entry.text, entry.strength))
            continue
        pending.append(entry)
        if entry.end == 1.0:
            if len(pending) != 2 or pending[0].strength != pending[1].strength:
                raise _Unreadable(
                    f"{len(pending)} step ranges of one prompt (alternation or nested edits) are not read back"
                )
            parts.append((_edit(pending[0], pending[1], line), pending[0].strength))
            pending = []
    if pending:
        raise _Unreadable("step ranges that do not reach the end of sampling")
    return parts


def read_prompt(
    reader: ConditioningReader, link: Any, line: Callable[[], Timeline], *, negative: bool = False
) -> ReadPrompt:
    """The A1111 prompt of the conditioning at ``link`` (a KSampler's positive or ``negative`` input);
    ``line`` gives the KSampler's ComfyUI calls (ValueError when unknown), needed for step ranges."""
    try:
        parts = _parts(_entries(reader, _link(link), [0]), line)
    except _Unreadable as exc:
        return ReadPrompt(None, reason=str(exc))
    except ValueError as exc:  # the timeline: a sampler or scheduler whose calls are not modelled
        return ReadPrompt(None, reason=f"the step where the prompt switches is not known: {exc}")
    if len(parts) == 1 and parts[0][1] == 1.0:
        return ReadPrompt(parts[0][0])
    texts = [text.strip() for text, _ in parts]
    if negative:
        return ReadPrompt(None, reason="a combined or weighted negative prompt has no A1111 form")
    total = sum(strength for _, strength in parts)
    if total <= 0:
        return ReadPrompt(None, reason="AND strengths that sum to 0")
    written = [
        text if strength == 1.0 else f"{text} :{strength:g}"
        for text, (_, strength) in zip(texts, parts, strict=True)
    ]
    return ReadPrompt(" AND ".join(written), weight_sum=total)


def _escaped(text: str) -> str:
    """ComfyUI reads ``[`` and ``]`` as plain characters; A1111 syntax needs them escaped (before the
    edits made here are added)."""
    return text.replace("[", "\\[").replace("]", "\\]")
