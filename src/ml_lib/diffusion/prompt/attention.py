"""A1111 attention weights: prompt text → weighted chunks, as ``parse_prompt_attention`` computes them.

``(x)`` multiplies by 1.1, ``[x]`` divides by 1.1, ``(x:1.3)`` multiplies by 1.3, ``\\(`` ``\\)`` ``\\[``
``\\]`` ``\\\\`` are literal characters, ``BREAK`` is its own marker (text ``"BREAK"``, weight -1).
Unbalanced input never raises: an unclosed ``(`` or ``[`` weighs everything after it, a stray ``)``
or ``]`` is kept as text, and neighbours of equal weight are merged, exactly as A1111 does. The
deliberate differences: a weight A1111 would crash on, such as ``(x:1.2.3)``, is read as text (the
parenthesis then counts as a plain ``(x)``); and degenerate numbers raise :class:`PromptError` (see
:mod:`.limits`): brackets nested over 32 deep, and weights not finite or beyond ±100.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .limits import check_attention_weight, check_nesting

__all__ = [
    "BREAK",
    "ROUND_MULTIPLIER",
    "SQUARE_MULTIPLIER",
    "WeightedChunk",
    "parse_number",
    "parse_prompt_attention",
]

BREAK = "BREAK"
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1

_TOKEN = re.compile(
    r"""
      (?P<escape>\\[()\[\]\\]?)              # \( \) \[ \] \\ or a lone backslash
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?[.\d]+)\s*\)       # ":1.3)" closes a round bracket with a weight
    | (?P<close>[)\]])
    | [^\\()\[\]:]+
    | :
    """,
    re.X,
)
_BREAK_WORD = re.compile(r"\bBREAK\b")


@dataclass(frozen=True, slots=True)
class WeightedChunk:
    """A run of prompt text and its attention weight; a BREAK marker has text "BREAK" and weight -1."""

    text: str
    weight: float

    @property
    def is_break(self) -> bool:
        """True for the BREAK marker (a BREAK inside brackets gets another weight and is plain text)."""
        return self.text == BREAK and self.weight == -1.0


def parse_number(text: str) -> float | None:
    """A finite float from ``text``, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_breaks(text: str) -> list[str]:
    """``re.split(r"\\s*\\bBREAK\\b\\s*", text)`` in linear time (that regex is quadratic on long spaces)."""
    if "BREAK" not in text:
        return [text]
    pieces, start = [], 0
    for match in _BREAK_WORD.finditer(text):
        if match.start() < start:  # "BREAK BREAK": the spaces were already taken
            continue
        left = match.start()
        while left > start and text[left - 1].isspace():
            left -= 1
        right = match.end()
        while right < len(text) and text[right].isspace():
            right += 1
        pieces.append(text[start:left])
        start = right
    pieces.append(text[start:])
    return pieces


def parse_prompt_attention(text: str) -> tuple[WeightedChunk, ...]:
    """Weighted chunks of ``text`` with A1111's emphasis rules (see the module docstring)."""
    parts: list[list[str | float]] = []
    rounds: list[int] = []
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for part in parts[start:]:
            part[1] = float(part[1]) * factor

    def add_text(value: str) -> None:
        for i, piece in enumerate(_split_breaks(value)):
            if i:
                parts.append([BREAK, -1.0])
            parts.append([piece, 1.0])

    for match in _TOKEN.finditer(text):
        token = match.group(0)
        weight = match.group("weight")
        if match.group("escape") is not None:
            parts.append([token[1:], 1.0])
        elif match.group("open") is not None:
            (rounds if token == "(" else squares).append(len(parts))
            check_nesting(len(rounds) + len(squares))
        elif weight is not None and rounds:
            factor = parse_number(weight)
            if factor is None and _is_float(weight):
                check_attention_weight(float(weight), token)  # a number too large to be finite
            if factor is None:  # A1111 raises here; read it as text and close the bracket plainly
                add_text(token[:-1])
                factor = ROUND_MULTIPLIER
            scale(rounds.pop(), factor)
        elif token == ")" and rounds:
            scale(rounds.pop(), ROUND_MULTIPLIER)
        elif token == "]" and squares:
            scale(squares.pop(), SQUARE_MULTIPLIER)
        else:
            add_text(token)
    for start in rounds:
        scale(start, ROUND_MULTIPLIER)
    for start in squares:
        scale(start, SQUARE_MULTIPLIER)
    if not parts:
        return (WeightedChunk("", 1.0),)
    for text_part, part_weight in parts:
        if text_part and (part_weight != -1.0 or text_part != BREAK):
            check_attention_weight(float(part_weight), str(text_part))
    merged: list[tuple[list[str], float]] = []  # runs of equal weight, joined once (not s += t: quadratic)
    for text_part, part_weight in parts:
        if merged and part_weight == merged[-1][1]:
            merged[-1][0].append(str(text_part))
        else:
            merged.append(([str(text_part)], float(part_weight)))
    return tuple(WeightedChunk("".join(texts), weight) for texts, weight in merged)
