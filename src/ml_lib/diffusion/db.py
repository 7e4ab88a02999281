"""The project's one SQLite database: ordered migrations, each applied in its own transaction, WAL mode."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigError

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


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection) -> None:
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise ConfigError(
            f"Database schema version {current} is newer than this ml-lib knows ({len(MIGRATIONS)}); "
            "upgrade ml-lib or set ML_DIFFUSION_HOME to another folder."
        )
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        log.info("migrating database to schema version %d", version)
        statements = [s for s in script.split(";") if s.strip()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(
            f"Cannot open the database {path}: {exc}. Check ML_DIFFUSION_HOME points to a writable folder."
        ) from exc
    return conn
