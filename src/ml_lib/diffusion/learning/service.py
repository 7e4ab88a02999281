"""History: what the facade asks of the learning room (record, rate, list, learn, export), over one store.

A rating target is a generation id, an image path (matched by the id embedded in it, else by the sha256 of
its bytes) or anything with a ``generation_id`` attribute (a ``GenerationResult``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .._files import atomic_path
from ..errors import HistoryImportError, MetadataError, RatingError, UnknownGenerationError
from ..planning.preferences import Preferences
from .collector import EDIT_WINDOW, detect_edit, sha256_file
from .learner import learn
from .records import (
    MAX_NOTE,
    MAX_TAG,
    Feedback,
    FeedbackKind,
    GenerationRecord,
    is_generation_id,
    new_id,
    parse_stars,
)
from .store import HistoryStore

__all__ = ["Entry", "History", "Stats", "Target"]


class _HasId(Protocol):
    @property
    def generation_id(self) -> str: ...


#: What ``rate`` accepts: a generation id, an image path, or a result carrying ``generation_id``.
Target = str | Path | _HasId


@dataclass(frozen=True, slots=True)
class Entry:
    """A recorded generation with what its feedback says."""

    record: GenerationRecord
    stars: int | None
    tags: tuple[str, ...]
    deleted: bool
    edited_into: str | None  # the generation that regenerated it with changes


@dataclass(frozen=True, slots=True)
class Stats:
    """Totals over the history."""

    generations: int
    rated: int
    mean_stars: float | None
    overrides: tuple[tuple[str, int], ...]  # field, times the user changed it
    tags: tuple[tuple[str, int], ...]
    edits: int
    by_content: tuple[tuple[str, int], ...]


def _tags(tags: Iterable[str]) -> tuple[str, ...]:
    out = []
    for tag in tags:
        text = " ".join(str(tag).split())
        if not text or len(text) > MAX_TAG:
            raise RatingError(f"Tag {tag!r} must be 1 to {MAX_TAG} characters, e.g. --tag 'too dark'.")
        out.append(text)
    return tuple(dict.fromkeys(out))


class History:
    """The history file, opened on first use; learned preferences cached until the next write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._store: HistoryStore | None = None
        self._prefs: Preferences | None = None

    @property
    def store(self) -> HistoryStore:
        """The open store (opened, created and migrated on first use)."""
        if self._store is None:
            self._store = HistoryStore(self.path)
        return self._store

    def close(self) -> None:
        """Close the file."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def preferences(self) -> Preferences:
        """What was learned (empty without a history file: planning is today's, nothing is created)."""
        if self._prefs is None:
            if self._store is None and not self.path.exists():
                return Preferences()
            since = self.store.learn_since
            self._prefs = learn(self.store.generations(since=since), self.store.feedback(since=since))
        return self._prefs

    # -- writing --------------------------------------------------------------------------------
    def record(self, record: GenerationRecord) -> Feedback | None:
        """Store a generation; an EDIT event too when it regenerates a recent request with changes."""
        recent = self.store.generations(limit=50, since=record.created - EDIT_WINDOW)
        self.store.add_generation(record)
        edit = detect_edit(record, recent)
        if edit is not None:
            self.store.add_feedback(edit)
        self._prefs = None
        return edit

    def find(self, target: Target) -> GenerationRecord:
        """The generation ``target`` names; UnknownGenerationError says why none matched."""
        gid = getattr(target, "generation_id", None)
        if isinstance(gid, str):
            target = gid
        if isinstance(target, str) and is_generation_id(target.strip().lower()):
            found = self.store.get(target.strip().lower())
            if found is None:
                raise UnknownGenerationError(
                    f"No recorded generation {target}; `ml-diffusion history` lists the recorded ones."
                )
            return found
        return self._find_image(Path(str(target)))

    def _find_image(self, path: Path) -> GenerationRecord:
        from ..output.metadata import read_metadata

        if not path.is_file():
            raise UnknownGenerationError(
                f"{path} is neither an image file nor a generation id (32 hex digits from `ml-diffusion history`)."
            )
        try:
            embedded = read_metadata(path).generation_id
        except MetadataError as exc:
            raise UnknownGenerationError(f"{path} cannot be matched to a generation: {exc}") from exc
        found = self.store.get(embedded) if embedded else None
        found = found or self.store.by_sha256(sha256_file(path))
        if found is None:
            why = "its generation id is not in this history" if embedded else "it carries no generation id"
            raise UnknownGenerationError(
                f"{path} was not made here ({why}, and no recorded image has its bytes); rate images "
                "that ml-diffusion generated with this ML_DIFFUSION_HOME."
            )
        return found

    def rate(
        self, target: Target, stars: int | str, tags: Sequence[str] = (), note: str | None = None
    ) -> Feedback:
        """Rate a generation 1-5 (or up / down) with optional tags and a note; checked before writing."""
        value = parse_stars(stars)
        clean = _tags(tags)
        if note is not None and not 0 < len(note.strip()) <= MAX_NOTE:
            raise RatingError(f"A note must be 1 to {MAX_NOTE} characters.")
        record = self.find(target)
        event = Feedback(new_id(), record.id, time.time(), FeedbackKind.RATING, value, clean, note)
        self.store.add_feedback(event)
        self._prefs = None
        return event

    def tag(self, target: Target, tags: Sequence[str], note: str | None = None) -> Feedback:
        """Tag a generation without rating it (a "favourite" tag counts as 5 stars to the learner)."""
        clean = _tags(tags)
        if not clean:
            raise RatingError("Give at least one tag, e.g. 'too dark' or 'favourite'.")
        if note is not None and not 0 < len(note.strip()) <= MAX_NOTE:
            raise RatingError(f"A note must be 1 to {MAX_NOTE} characters.")
        record = self.find(target)
        event = Feedback(new_id(), record.id, time.time(), FeedbackKind.TAGS, None, clean, note)
        self.store.add_feedback(event)
        self._prefs = None
        return event

    def mark_deleted(self, target: Target) -> Feedback:
        """Record that the user deleted (or discarded) a generation's image."""
        record = self.find(target)
        event = Feedback(new_id(), record.id, time.time(), FeedbackKind.DELETED)
        self.store.add_feedback(event)
        self._prefs = None
        return event

    def reset(self) -> float:
        """Forget what was learned: later plans learn only from events after now (history is kept)."""
        self._prefs = None
        return self.store.reset_learning()

    def export(self, path: Path) -> int:
        """Write the whole history as JSONL (atomically); returns the number of lines."""
        lines = list(self.store.export_lines())
        with atomic_path(Path(path), what="export the history", fix="choose another file") as temp:
            temp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return len(lines)

    def import_(self, path: Path) -> tuple[int, int]:
        """Add an export's generations and feedback (all or nothing); returns (generations, events) added."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryImportError(
                f"Cannot read {path}: {exc}; give a file from `learning export`."
            ) from exc
        added = self.store.import_lines(text.splitlines())
        self._prefs = None
        return added

    # -- reading --------------------------------------------------------------------------------
    def entries(self, *, limit: int | None = 20, content_type: str | None = None) -> list[Entry]:
        """Recent generations, newest first, with their ratings, tags and edits."""
        records = self.store.generations(limit=limit, content_type=content_type)
        events: dict[str, list[Feedback]] = {}
        for event in self.store.feedback():
            events.setdefault(event.generation_id, []).append(event)
        out = []
        for record in records:
            mine = events.get(record.id, [])
            ratings = [e.stars for e in mine if e.kind is FeedbackKind.RATING]
            tags = tuple(dict.fromkeys(t for e in mine for t in e.tags))
            edited = next((e.other_id for e in mine if e.kind is FeedbackKind.EDIT), None)
            deleted = any(e.kind is FeedbackKind.DELETED for e in mine)
            out.append(Entry(record, ratings[-1] if ratings else None, tags, deleted, edited))
        return out

    def stats(self) -> Stats:
        """Totals: generations, ratings and their mean, overrides per field, tags, edits, content types."""
        entries = self.entries(limit=None)
        rated = [e.stars for e in entries if e.stars is not None]
        overrides = Counter(o.field for e in entries for o in e.record.overrides)
        tags = Counter(t for e in entries for t in e.tags)
        content = Counter(e.record.context.content_type for e in entries)
        return Stats(
            generations=len(entries),
            rated=len(rated),
            mean_stars=sum(rated) / len(rated) if rated else None,
            overrides=tuple(sorted(overrides.items(), key=lambda kv: (-kv[1], kv[0]))),
            tags=tuple(sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))),
            edits=sum(1 for e in entries if e.edited_into),
            by_content=tuple(sorted(content.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
