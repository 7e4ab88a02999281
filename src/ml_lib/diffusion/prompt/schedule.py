"""Which text conditions each step: A1111's prompt schedules for a prompt and its negative.

``get_multicond_learned_conditioning`` of AUTOMATIC1111's ``modules/prompt_parser.py`` splits the prompt on
``AND`` (each part with its ``:weight``, the weight removed from the text) and schedules each part with
``get_learned_conditioning_prompt_schedules``; the negative prompt goes through ``get_learned_conditioning``:
scheduled, but neither split on ``AND`` nor stripped of a trailing weight. Both are reproduced here from the
lossless tree of :mod:`.syntax` (the step rules live in :mod:`.nodes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .grammar import parse_nodes
from .networks import strip_networks
from .nodes import Alternation, Node, Scheduled, iter_nodes
from .syntax import PromptDocument, ScheduleEntry, SubPrompt

__all__ = ["PartSchedule", "needs_schedule", "negative_schedule", "part_schedules"]


@dataclass(frozen=True, slots=True)
class PartSchedule:
    """One ``AND`` part: its composable weight and its texts over the steps."""

    weight: float
    entries: tuple[ScheduleEntry, ...]


def part_schedules(
    document: PromptDocument, steps: int, *, hires_steps: int | None = None
) -> tuple[PartSchedule, ...]:
    """The schedule of every ``AND`` part of ``document`` over ``steps`` (``hires_steps``: the second pass
    of hires fix, whose step numbers count on from ``steps``)."""
    return tuple(
        PartSchedule(part.weight, part.schedule(steps, hires_steps=hires_steps))
        for part in document.subprompts
    )


def negative_schedule(text: str, steps: int, *, hires_steps: int | None = None) -> tuple[ScheduleEntry, ...]:
    """The schedule of a negative prompt: the whole text is one part (``AND`` and ``:1.2`` stay words)."""
    return SubPrompt(parse_nodes(strip_networks(text))).schedule(steps, hires_steps=hires_steps)


def _changes(nodes: tuple[Node, ...]) -> bool:
    return any(isinstance(node, Scheduled | Alternation) for node in iter_nodes(nodes))


def needs_schedule(document: PromptDocument, negative: str) -> bool:
    """True when A1111 conditions ``document`` (with ``negative``) otherwise than on its text as written:
    several ``AND`` parts, a part weight written (even ``:1``, which A1111 removes from the text), or an
    edit or alternation in either prompt."""
    if len(document.subprompts) > 1:
        return True
    if any(":" in part.tail or _changes(part.nodes) for part in document.subprompts):
        return True
    return _changes(parse_nodes(strip_networks(negative)))
