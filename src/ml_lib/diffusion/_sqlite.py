"""What the catalog database and the history file share: ordered migrations in one exclusive transaction,
WAL with BUSY retries, and moving a damaged file (with its WAL and shared-memory files) aside. Callers turn
OSErrors into their own typed errors."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["migrate", "move_aside", "schema_version", "use_wal"]

log = logging.getLogger(__name__)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new one)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[str], label: str, newer: Callable[[int], Exception]
) -> None:
    """Apply the missing ``migrations`` in one ``BEGIN IMMEDIATE`` transaction, reading the version again under
    the lock (another process may have migrated); ``newer(version)`` is raised for a file from a newer ml-lib."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        if current > len(migrations):
            raise newer(current)
        for version, script in enumerate(migrations[current:], start=current + 1):
            log.info("migrating %s to schema version %d", label, version)
            for statement in (s for s in script.split(";") if s.strip()):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def use_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to WAL (persistent, so usually a no-op); retried, as SQLite may answer BUSY without waiting."""
    deadline, delay = time.monotonic() + patience, 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def move_aside(path: Path) -> Path:
    """Rename a damaged database and its ``-wal``/``-shm`` files to ``<name>.damaged-<stamp>[-n]``; OSError
    when it cannot."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    return aside
