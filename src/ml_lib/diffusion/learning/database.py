"""The history's own SQLite file (``<home>/history.sqlite3``): migrations, WAL, backups, restore on damage.

History and ratings are not a cache of the disk (the catalog database is): they live in their own file, so
a damaged catalog cannot take them along. Migrations are ordered and applied under ``BEGIN IMMEDIATE``
(exactly one process applies each); the file is copied with ``sqlite3.Connection.backup`` to
``history.sqlite3.bak`` before each migration, and after a write when the last copy is a day old or
:data:`BACKUP_EVERY` writes have passed (the copy is written to a temp file and moved into place). A damaged file is
moved aside as ``history.sqlite3.damaged-<stamp>`` and the backup restored; only with no sound backup is a
fresh file started, with a warning naming what was kept.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from .._files import atomic_path
from .._sqlite import migrate, move_aside, use_wal
from ..errors import HistoryError

__all__ = ["BACKUP_EVERY", "BACKUP_MAX_AGE", "MIGRATIONS", "backup", "backup_path", "open_history"]

log = logging.getLogger(__name__)

#: Writes between two backups, and the age (seconds) after which the next open or write copies the file.
BACKUP_EVERY = 50
BACKUP_MAX_AGE = 24 * 3600

#: Each entry upgrades the schema by one version. Never edit a released entry; append a new one.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE generations (
        id TEXT PRIMARY KEY,
        created REAL NOT NULL,
        family TEXT NOT NULL,
        content_type TEXT NOT NULL,
        style TEXT NOT NULL,
        prompt TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX generations_created ON generations (created);
    CREATE TABLE outputs (
        generation_id TEXT NOT NULL REFERENCES generations (id),
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (generation_id, path)
    );
    CREATE INDEX outputs_sha256 ON outputs (sha256);
    CREATE INDEX outputs_path ON outputs (path);
    CREATE TABLE feedback (
        id TEXT PRIMARY KEY,
        generation_id TEXT NOT NULL REFERENCES generations (id),
        created REAL NOT NULL,
        kind TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX feedback_generation ON feedback (generation_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)


class _Damaged(Exception):
    """The file is not a sound SQLite database (internal: :func:`open_history` restores it)."""


def backup_path(path: Path) -> Path:
    """Where the backup of the history file at ``path`` lives."""
    return path.with_name(path.name + ".bak")


def _is_damage(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", None)
    if name is not None:
        return name in {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
    return type(exc) is sqlite3.DatabaseError


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    if _version(conn) == len(MIGRATIONS):
        return
    if _version(conn) > 0:
        backup(conn, path)  # a copy of the old schema before changing it
    migrate(conn, MIGRATIONS, "the history", _newer)


def _newer(current: int) -> HistoryError:
    return HistoryError(
        f"History schema version {current} is newer than this ml-lib knows ({len(MIGRATIONS)}); "
        "upgrade ml-lib or set ML_DIFFUSION_HOME to another folder."
    )


def _connect(path: Path) -> sqlite3.Connection:
    """Open, check and migrate; ``_Damaged`` for a damaged file, HistoryError for anything else."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from exc
    try:
        use_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")  # a rating that was acknowledged is on disk
        conn.execute("PRAGMA foreign_keys=ON")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise _Damaged("; ".join(problems))
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        if _is_damage(exc):
            raise _Damaged(str(exc)) from exc
        raise _unusable(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _unusable(path: Path, exc: BaseException) -> HistoryError:
    return HistoryError(
        f"Cannot open the history {path}: {exc}. Check ML_DIFFUSION_HOME points to a writable folder."
    )


def backup(conn: sqlite3.Connection, path: Path) -> Path:
    """Copy the open history to its ``.bak`` file (a consistent snapshot, written atomically)."""
    target = backup_path(path)
    with atomic_path(target, what="back up the history", fix="free space in ML_DIFFUSION_HOME") as temp:
        copy = sqlite3.connect(temp)
        try:
            conn.backup(copy)
        except sqlite3.Error as exc:
            raise HistoryError(f"Could not back up the history {path} to {target}: {exc}.") from exc
        finally:
            copy.close()
    return target


def backup_is_stale(path: Path, now: float | None = None) -> bool:
    """Whether the backup is missing or older than :data:`BACKUP_MAX_AGE`."""
    try:
        age = (now or time.time()) - backup_path(path).stat().st_mtime
    except FileNotFoundError:
        return True
    return age > BACKUP_MAX_AGE


def _sound(copy: Path) -> bool:
    """Whether ``copy`` is a readable SQLite file that passes ``quick_check``."""
    if not copy.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            return [r[0] for r in conn.execute("PRAGMA quick_check(3)")] == ["ok"]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("The history backup %s is not usable: %s", copy, exc)
        return False


def _move_aside(path: Path, reason: str) -> Path:
    try:
        return move_aside(path)
    except OSError as exc:
        raise HistoryError(
            f"The history {path} is damaged ({reason}) and could not be moved aside ({exc}); move it by "
            f"hand, then copy {backup_path(path)} to {path}."
        ) from exc


def _restore(path: Path, damage: str) -> sqlite3.Connection:
    aside = _move_aside(path, damage)
    copy = backup_path(path)
    if _sound(copy):
        with atomic_path(path, what="restore the history", fix="free space in ML_DIFFUSION_HOME") as temp:
            shutil.copyfile(copy, temp)
        log.warning(
            "The history %s was damaged (%s): moved it to %s and restored the backup of %s; events after "
            "that backup are in the damaged file only.",
            path,
            damage,
            aside,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(copy.stat().st_mtime)),
        )
    else:
        log.warning(
            "The history %s was damaged (%s) and no sound backup exists: moved it to %s and started an "
            "empty history.",
            path,
            damage,
            aside,
        )
    try:
        return _connect(path)
    except _Damaged as again:
        raise HistoryError(
            f"The history {path} is still damaged after restoring ({again}); check the disk, or move "
            f"{copy} and {path} away to start an empty history."
        ) from again


def open_history(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the history at ``path``; restore the backup if it is damaged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(path, exc) from exc
    try:
        return _connect(path)
    except _Damaged as damage:
        return _restore(path, str(damage))
