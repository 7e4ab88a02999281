"""What the history holds: one record per executed plan, and feedback events about them (pure records).

A :class:`GenerationRecord` keeps the plan JSON, the request as the user gave it, the learning context
(family, content type, style), what was recommended against what was used (:class:`Override`), the
written files with their sha256, timings and device. A :class:`Feedback` is a rating, tags, a note,
"deleted", or an edit linking a generation to the one regenerated from it with changes.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import Enum

from ..errors import RatingError
from ..planning.preferences import LearningContext

__all__ = [
    "MAX_NOTE",
    "MAX_TAG",
    "THUMBS",
    "Feedback",
    "FeedbackKind",
    "GenerationRecord",
    "LearningContext",
    "OutputFile",
    "Override",
    "is_generation_id",
    "new_id",
    "parse_stars",
]

#: Thumbs up / down as stars: a one-bit verdict is taken at its extreme (the user chose not to grade).
THUMBS = {"up": 5, "down": 1, "+1": 5, "-1": 1}
MAX_TAG = 64
MAX_NOTE = 2000
_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A fresh generation / feedback id: uuid4 as 32 lowercase hex digits."""
    return uuid.uuid4().hex


def is_generation_id(text: str) -> bool:
    """Whether ``text`` has the form of a generation id (32 lowercase hex digits)."""
    return bool(_ID.fullmatch(text))


def parse_stars(value: int | str) -> int:
    """1-5 stars from an int or text ("4", "up", "down"); RatingError names the accepted values."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in THUMBS:
            return THUMBS[key]
        if not key.isdigit():
            raise RatingError(f"Rating {value!r} is not 1-5, up or down; give e.g. 4 or up.")
        value = int(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise RatingError(f"Rating {value!r} is out of range; give 1 to 5 stars (or up / down).")
    return value


@dataclass(frozen=True, slots=True)
class Override:
    """A field the user set (or a LoRA added/removed/reweighted): what we recommended, what was used.

    ``field`` is a plan field (``cfg_scale``, ``steps``, ``sampler``, ``size`` …) or ``lora:<name>``
    (value: the UNet weight; ``None`` recommended = added by the user, ``None`` used = removed).
    """

    field: str
    recommended: str | int | float | None
    used: str | int | float | None


@dataclass(frozen=True, slots=True)
class OutputFile:
    """An image written by a generation and the sha256 of its bytes."""

    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """One executed plan, as the history keeps it."""

    id: str
    created: float
    context: LearningContext
    prompt: str
    plan_json: str
    request_json: str | None
    values: tuple[tuple[str, str | int | float], ...] = ()  # what was used: size, steps, cfg_scale …
    overrides: tuple[Override, ...] = ()
    outputs: tuple[OutputFile, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    device: str = ""
    learned: bool = False  # whether learned preferences shaped the plan

    def value(self, name: str) -> str | int | float | None:
        """The used value of ``name`` (``size``, ``steps``, ``cfg_scale``, ``sampler``, ``lora:<name>``)."""
        return next((v for k, v in self.values if k == name), None)


class FeedbackKind(str, Enum):
    """What a feedback event says."""

    RATING = "rating"
    TAGS = "tags"
    NOTE = "note"
    DELETED = "deleted"
    EDIT = "edit"  # regenerated with changes: ``other_id`` is the new generation


@dataclass(frozen=True, slots=True)
class Feedback:
    """One feedback event about a generation (events are appended, never rewritten)."""

    id: str
    generation_id: str
    created: float
    kind: FeedbackKind
    stars: int | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None
    other_id: str | None = None
    changes: tuple[Override, ...] = ()  # for EDIT: old value → new value per changed field
