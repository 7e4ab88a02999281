"""HistoryStore: generations and feedback in the history file; one writer transaction per event.

Each write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` (``synchronous=FULL``): when a method returns, the event
is on disk and survives the process being killed. The file is backed up after every feedback event, and
after generations every ``BACKUP_EVERY`` writes or once a day. Records are stored as JSON beside indexed columns; the
written files (path, sha256) have their own table so an image found on disk is matched back by sha256.
Export / import is JSONL and round-trips exactly.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from .._codec import from_jsonable, to_jsonable
from ..errors import HistoryError, HistoryImportError, UnknownGenerationError
from .database import BACKUP_EVERY, backup, backup_is_stale, open_history
from .records import Feedback, GenerationRecord, OutputFile

__all__ = ["EXPORT_VERSION", "HistoryStore"]

EXPORT_VERSION = 1
_LEARN_SINCE = "learn_since"
_WRITES = "writes_since_backup"
T = TypeVar("T")


def _dump(value: Any) -> str:
    return json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=True)


def _load(cls: type[T], text: str) -> T:
    return from_jsonable(cls, json.loads(text), error=HistoryError)


class HistoryStore:
    """The history file at ``path`` (opened on construction; :meth:`close` when done)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn = open_history(self.path)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the file)."""
        self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------------
    @contextmanager
    def _write(self, *, precious: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise HistoryError(
                f"Cannot write the history {self.path}: {exc}; retry, or check the disk."
            ) from exc
        try:
            yield conn
            writes = int(self._meta(_WRITES) or 0) + 1
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_WRITES, str(writes)))
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise HistoryError(
                f"Cannot write the history {self.path}: {exc}; retry, or check the disk."
            ) from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if precious or writes >= BACKUP_EVERY or backup_is_stale(self.path):
            backup(conn, self.path)
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_WRITES, "0"))

    def add_generation(self, record: GenerationRecord) -> None:
        """Record one executed plan (its outputs included)."""
        with self._write() as conn:
            self._insert_generation(conn, record)

    def _insert_generation(self, conn: sqlite3.Connection, record: GenerationRecord) -> None:
        ctx = record.context
        conn.execute(
            "INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.created, ctx.family, ctx.content_type, ctx.style, record.prompt,
             _dump(replace(record, outputs=()))),
        )  # fmt: skip
        for out in record.outputs:
            conn.execute("INSERT OR IGNORE INTO outputs VALUES (?, ?, ?)", (record.id, out.path, out.sha256))

    def add_outputs(self, generation_id: str, outputs: Iterable[OutputFile]) -> None:
        """Files written later for a recorded generation (e.g. ``reproduce`` saves after executing)."""
        with self._write() as conn:
            for out in outputs:
                conn.execute(
                    "INSERT OR IGNORE INTO outputs VALUES (?, ?, ?)", (generation_id, out.path, out.sha256)
                )

    def add_feedback(self, event: Feedback) -> None:
        """Append a feedback event (then back the file up: ratings are rare and precious); an unknown
        generation raises UnknownGenerationError."""
        with self._write(precious=True) as conn:
            for gid in (event.generation_id, event.other_id):
                if gid is not None and self._row(gid) is None:
                    raise UnknownGenerationError(
                        f"No recorded generation {gid}; `ml-diffusion history` lists the recorded ones."
                    )
            conn.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?)",
                (event.id, event.generation_id, event.created, event.kind.value, _dump(event)),
            )

    def reset_learning(self, now: float | None = None) -> float:
        """Learn only from events after now (history and ratings are kept); returns the timestamp."""
        stamp = time.time() if now is None else now
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_LEARN_SINCE, repr(stamp)))
        return stamp

    # -- reading --------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def learn_since(self) -> float:
        """Events before this timestamp are not learned from (0: all)."""
        return float(self._meta(_LEARN_SINCE) or 0.0)

    def _row(self, gid: str) -> tuple[str] | None:
        return self._conn.execute("SELECT record FROM generations WHERE id = ?", (gid,)).fetchone()

    def _outputs(self, gid: str) -> tuple[OutputFile, ...]:
        rows = self._conn.execute(
            "SELECT path, sha256 FROM outputs WHERE generation_id = ? ORDER BY rowid", (gid,)
        )
        return tuple(OutputFile(p, s) for p, s in rows)

    def _record(self, gid: str, text: str) -> GenerationRecord:
        return replace(_load(GenerationRecord, text), outputs=self._outputs(gid))

    def get(self, generation_id: str) -> GenerationRecord | None:
        """The recorded generation with this id, or None."""
        row = self._row(generation_id)
        return None if row is None else self._record(generation_id, row[0])

    def by_sha256(self, sha256: str) -> GenerationRecord | None:
        """The generation that wrote a file with these bytes (the latest, if several), or None."""
        row = self._conn.execute(
            "SELECT generation_id FROM outputs WHERE sha256 = ? ORDER BY rowid DESC LIMIT 1", (sha256,)
        ).fetchone()
        return None if row is None else self.get(row[0])

    def generations(
        self, *, limit: int | None = None, since: float = 0.0, content_type: str | None = None
    ) -> list[GenerationRecord]:
        """Recorded generations, newest first."""
        sql = "SELECT id, record FROM generations WHERE created >= ?"
        args: list[object] = [since]
        if content_type is not None:
            sql += " AND content_type = ?"
            args.append(content_type)
        sql += " ORDER BY created DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._record(gid, text) for gid, text in self._conn.execute(sql, args).fetchall()]

    def feedback(self, *, since: float = 0.0, generation_id: str | None = None) -> list[Feedback]:
        """Feedback events, oldest first."""
        sql = "SELECT record FROM feedback WHERE created >= ?"
        args: list[object] = [since]
        if generation_id is not None:
            sql += " AND generation_id = ?"
            args.append(generation_id)
        rows = self._conn.execute(sql + " ORDER BY created, id", args).fetchall()
        return [_load(Feedback, text) for (text,) in rows]

    def counts(self) -> dict[str, int]:
        """Rows per table: generations, outputs, feedback."""
        return {
            t: int(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
            for t in ("generations", "outputs", "feedback")
        }

    # -- export / import ------------------------------------------------------------------------
    def export_lines(self) -> Iterator[str]:
        """The whole history as JSONL lines (header, meta, generations, feedback; stable order)."""
        yield json.dumps({"type": "ml-diffusion-history", "version": EXPORT_VERSION}, sort_keys=True)
        for key, value in self._conn.execute(
            "SELECT key, value FROM meta WHERE key != ? ORDER BY key", (_WRITES,)
        ):
            yield json.dumps({"type": "meta", "key": key, "value": value}, sort_keys=True)
        for record in reversed(self.generations()):
            yield json.dumps(
                {"type": "generation", "record": to_jsonable(record)}, ensure_ascii=False, sort_keys=True
            )
        for event in self.feedback():
            yield json.dumps(
                {"type": "feedback", "record": to_jsonable(event)}, ensure_ascii=False, sort_keys=True
            )

    def import_lines(self, lines: Iterable[str]) -> tuple[int, int]:
        """Add an export's generations and feedback (ids already present are skipped); all or nothing.

        Returns (generations added, feedback events added); HistoryImportError names the bad line.
        """
        meta, gens, events = _parse_export(lines)
        known = {e.generation_id for e in events} | {e.other_id for e in events if e.other_id}
        ids = {g.id for g in gens}
        missing = sorted(g for g in known - ids if self._row(g) is None)
        if missing:
            raise HistoryImportError(
                f"The export has feedback about {len(missing)} generation(s) it does not contain "
                f"(e.g. {missing[0]}); export the whole history again with `ml-diffusion learning export`."
            )
        added = [0, 0]
        with self._write() as conn:
            for key, value in meta:
                conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            for record in gens:
                if self._row(record.id) is None:
                    self._insert_generation(conn, record)
                    added[0] += 1
            for event in events:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?)",
                    (event.id, event.generation_id, event.created, event.kind.value, _dump(event)),
                )
                added[1] += cursor.rowcount
        return added[0], added[1]


def _parse_export(
    lines: Iterable[str],
) -> tuple[list[tuple[str, str]], list[GenerationRecord], list[Feedback]]:
    meta: list[tuple[str, str]] = []
    gens: list[GenerationRecord] = []
    events: list[Feedback] = []
    readers: dict[str, Callable[[dict[str, Any]], None]] = {
        "meta": lambda d: meta.append((str(d["key"]), str(d["value"]))),
        "generation": lambda d: gens.append(
            from_jsonable(GenerationRecord, d["record"], error=HistoryImportError, strict=True)
        ),
        "feedback": lambda d: events.append(
            from_jsonable(Feedback, d["record"], error=HistoryImportError, strict=True)
        ),
    }
    header = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            kind = data.get("type") if isinstance(data, dict) else None
            if not header:
                if kind != "ml-diffusion-history" or data.get("version") != EXPORT_VERSION:
                    raise HistoryImportError(f"not an ml-diffusion history header (version {EXPORT_VERSION})")
                header = True
                continue
            if kind not in readers:
                raise HistoryImportError(f"unknown type {kind!r}")
            readers[kind](data)
        except HistoryImportError as exc:
            raise HistoryImportError(
                f"Cannot import the history: line {number}: {str(exc).rstrip('.')}; nothing was imported."
            ) from exc
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise HistoryImportError(
                f"Cannot import the history: line {number} is not a history record ({exc}); nothing was imported."
            ) from exc
    if not header:
        raise HistoryImportError("Cannot import the history: the file is empty; nothing was imported.")
    return meta, gens, events
