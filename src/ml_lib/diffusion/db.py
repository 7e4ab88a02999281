"""The project's one SQLite database: ordered migrations under one exclusive transaction, WAL mode.

Starting is safe when many processes start at once on a fresh home: the schema version is read inside a
``BEGIN IMMEDIATE`` transaction, so exactly one process applies each migration and the others see it done.

A damaged file (not a database, truncated, failing ``PRAGMA quick_check``) is moved aside as
``<name>.damaged-<timestamp>`` with one warning, and a fresh database is started: everything in it today
(model catalog, file hashes) is a cache of the disk that ``ml-diffusion models scan`` rebuilds.

History and feedback, once they exist, are not a cache: they will live in their own SQLite file beside
this one (so a damaged catalog cannot take them along), be backed up with ``sqlite3.Connection.backup``
before each migration, and on damage be restored from that backup instead of being started fresh.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ._sqlite import migrate, move_aside, schema_version, use_wal
from .errors import ConfigError, DatabaseDamagedError

__all__ = ["MIGRATIONS", "connect", "schema_version"]

log = logging.getLogger(__name__)

#: Each entry upgrades the schema by one version. Never edit a released entry; append a new one.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE file_hashes (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE INDEX file_hashes_sha256 ON file_hashes (sha256);
    """,
    # 2: model catalog (records as JSON + indexed columns); hashes of several kinds per file.
    """
    CREATE TABLE file_digests (
        path TEXT NOT NULL,
        algo TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (path, algo)
    );
    CREATE INDEX file_digests_digest ON file_digests (digest);
    INSERT INTO file_digests (path, algo, size, mtime_ns, digest)
        SELECT path, 'sha256', size, mtime_ns, sha256 FROM file_hashes;
    DROP TABLE file_hashes;
    CREATE TABLE models (
        path TEXT PRIMARY KEY,
        root TEXT NOT NULL,
        name_key TEXT NOT NULL,
        rel_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        family TEXT NOT NULL,
        status TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sidecar_sig TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        sha256 TEXT,
        autov2 TEXT,
        addnet TEXT,
        search TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX models_kind_family ON models (kind, family);
    CREATE INDEX models_name_key ON models (name_key);
    CREATE INDEX models_rel_key ON models (rel_key);
    CREATE INDEX models_root ON models (root);
    CREATE INDEX models_status ON models (status);
    CREATE INDEX models_sha256 ON models (sha256);
    CREATE INDEX models_autov2 ON models (autov2);
    CREATE INDEX models_addnet ON models (addnet);
    """,
)


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the missing migrations, all in one ``BEGIN IMMEDIATE`` transaction; a no-op when up to date."""
    if schema_version(conn) == len(MIGRATIONS):
        return  # the common case, without taking the write lock
    migrate(conn, MIGRATIONS, "the database", _newer)


def _newer(current: int) -> ConfigError:
    return ConfigError(
        f"Database schema version {current} is newer than this ml-lib knows ({len(MIGRATIONS)}); "
        "upgrade ml-lib or set ML_DIFFUSION_HOME to another folder."
    )


class _Damaged(Exception):
    """The file at hand is not a sound SQLite database (internal: ``connect`` recovers from it)."""


def _is_damage(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT and SQLITE_NOTADB surface as plain ``DatabaseError`` (locks, I/O: subclasses)."""
    name = getattr(exc, "sqlite_errorname", None)
    if name is not None:
        return name in {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
    return type(exc) is sqlite3.DatabaseError


def _open(path: Path) -> sqlite3.Connection:
    """Open, check and migrate; raise ``_Damaged`` for a damaged file, ConfigError for anything else."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from exc
    try:
        use_wal(conn)
        conn.execute("PRAGMA foreign_keys=ON")
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise _Damaged("; ".join(problems))
        _migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        if _is_damage(exc):
            raise _Damaged(str(exc)) from exc
        raise _unusable(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _unusable(path: Path, exc: BaseException) -> ConfigError:
    return ConfigError(
        f"Cannot open the database {path}: {exc}. Check ML_DIFFUSION_HOME points to a writable folder."
    )


@contextmanager
def _recovery_lock(path: Path) -> Iterator[None]:
    """Serialise recovery between processes (an advisory lock file beside the database, where supported)."""
    try:
        import fcntl
    except ImportError:  # Windows: the rename below fails for a file another process holds open
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _move_aside(path: Path, reason: str) -> Path:
    """Move the damaged database aside (see :func:`.._sqlite.move_aside`) or say how to do it by hand."""
    try:
        return move_aside(path)
    except OSError as exc:
        raise DatabaseDamagedError(
            f"The database {path} is damaged ({reason}) and could not be moved aside ({exc}); move or delete "
            "it by hand, then run `ml-diffusion models scan` to rebuild the catalog."
        ) from exc


def _recover(path: Path) -> sqlite3.Connection:
    """Under the lock: open again (another process may have recovered it), else move aside and start fresh."""
    with _recovery_lock(path):
        try:
            return _open(path)
        except _Damaged as damage:
            aside = _move_aside(path, str(damage))
            log.warning(
                "The database %s was damaged (%s): moved it to %s and started a fresh one; "
                "run `ml-diffusion models scan` to rebuild the model catalog.",
                path,
                damage,
                aside,
            )
        try:
            return _open(path)
        except _Damaged as damage:
            raise DatabaseDamagedError(
                f"A fresh database at {path} is damaged at once ({damage}); check the disk and the folder."
            ) from damage


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``; replace it if it is damaged."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable(path, exc) from exc
    try:
        return _open(path)
    except _Damaged:
        return _recover(path)
