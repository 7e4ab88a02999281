"""The prompt tree: plain text, emphasis, prompt editing ``[from:to:when]`` and alternation ``[a|b]``.

The tree is lossless: :func:`render_nodes` gives back exactly the text it was parsed from. A node's
text is kept as written (escapes included), so build nodes from user strings with :func:`escape`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

from .attention import ROUND_MULTIPLIER, SQUARE_MULTIPLIER, parse_number

__all__ = [
    "Alternation",
    "Emphasis",
    "Node",
    "Scheduled",
    "Text",
    "escape",
    "iter_nodes",
    "render_nodes",
    "text_at",
]

_ESCAPABLE = re.compile(r"([\\()\[\]])")
_WEIGHT_TEXT = re.compile(r"\s*([+-]?[.\d]+)\s*")


def escape(text: str) -> str:
    """``text`` with ``\\ ( ) [ ]`` escaped, so it reads back as literal characters."""
    return _ESCAPABLE.sub(r"\\\1", text)


@dataclass(frozen=True, slots=True)
class Text:
    """Text as written: escapes kept, and at the top level also stray brackets and colons."""

    source: str


@dataclass(frozen=True, slots=True)
class Emphasis:
    """``(children)``, ``(children:weight)`` or ``[children]``; ``weight`` is what follows the colon."""

    children: tuple[Node, ...]
    bracket: Literal["(", "["] = "("
    weight: tuple[Node, ...] | None = None

    @property
    def multiplier(self) -> float:
        """The attention factor A1111 applies: 1.1, 1/1.1, or the explicit weight when it is a number."""
        if self.bracket == "[":
            return SQUARE_MULTIPLIER
        if self.weight is not None:
            match = _WEIGHT_TEXT.fullmatch(render_nodes(self.weight))
            value = parse_number(match.group(1)) if match else None
            if value is not None:
                return value
        return ROUND_MULTIPLIER


@dataclass(frozen=True, slots=True)
class Scheduled:
    """Prompt editing ``[before:after:when]`` (``before`` None for ``[after:when]``).

    ``when`` is the number as written, surrounding spaces included. A1111's rule: a number with a
    decimal point is a fraction of the steps, one without is a step count.
    """

    before: tuple[Node, ...] | None
    after: tuple[Node, ...]
    when: str

    def end_step(self, steps: int, *, hires_steps: int | None = None) -> int:
        """Last step (1-based) that uses ``before``; values below 1 mean ``after`` from the start."""
        number = self.when.strip()
        value = float(number)
        if hires_steps is None:
            int_offset, float_offset, total = 0, 0.0, steps
        else:  # the hires pass counts its own steps after the first pass's
            int_offset, float_offset, total = steps, 1.0, hires_steps
        value = (value - float_offset) * total if "." in number else value - int_offset
        if value >= total:
            return total
        return int(max(value, -1.0))


@dataclass(frozen=True, slots=True)
class Alternation:
    """``[a|b|…]``: option ``(step - 1) % len(options)`` is used at each step."""

    options: tuple[tuple[Node, ...], ...]


Node: TypeAlias = Text | Emphasis | Scheduled | Alternation


def render_nodes(nodes: tuple[Node, ...]) -> str:
    """The prompt text of ``nodes``, exactly as parsed."""
    return "".join(_render(node) for node in nodes)


def _render(node: Node) -> str:
    if isinstance(node, Text):
        return node.source
    if isinstance(node, Emphasis):
        close = ")" if node.bracket == "(" else "]"
        weight = "" if node.weight is None else ":" + render_nodes(node.weight)
        return f"{node.bracket}{render_nodes(node.children)}{weight}{close}"
    if isinstance(node, Scheduled):
        before = "" if node.before is None else render_nodes(node.before) + ":"
        return f"[{before}{render_nodes(node.after)}:{node.when}]"
    return "[" + "|".join(render_nodes(option) for option in node.options) + "]"


def text_at(nodes: tuple[Node, ...], step: int, steps: int, *, hires_steps: int | None = None) -> str:
    """The prompt text A1111 conditions on at ``step`` (1-based) of ``steps``: edits and alternations
    resolved, emphasis kept as written."""
    out: list[str] = []
    _text_at(nodes, step, steps, hires_steps, out)
    return "".join(out)


def _text_at(nodes: tuple[Node, ...], step: int, steps: int, hires_steps: int | None, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.source)
        elif isinstance(node, Emphasis):
            out.append(node.bracket)
            _text_at(node.children, step, steps, hires_steps, out)
            if node.weight is not None:
                out.append(":")
                _text_at(node.weight, step, steps, hires_steps, out)
            out.append(")" if node.bracket == "(" else "]")
        elif isinstance(node, Scheduled):
            use_before = step <= node.end_step(steps, hires_steps=hires_steps)
            branch = (node.before or ()) if use_before else node.after
            _text_at(branch, step, steps, hires_steps, out)
        elif node.options:
            _text_at(node.options[(step - 1) % len(node.options)], step, steps, hires_steps, out)


def iter_nodes(nodes: tuple[Node, ...]) -> Iterator[Node]:
    """Every node of the tree, depth first, all branches included."""
    for node in nodes:
        yield node
        if isinstance(node, Emphasis):
            yield from iter_nodes(node.children)
            if node.weight is not None:
                yield from iter_nodes(node.weight)
        elif isinstance(node, Scheduled):
            if node.before is not None:
                yield from iter_nodes(node.before)
            yield from iter_nodes(node.after)
        elif isinstance(node, Alternation):
            for option in node.options:
                yield from iter_nodes(option)
