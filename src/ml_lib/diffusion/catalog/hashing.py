"""File hashes as A1111 and Civitai show them, computed once and cached by (path, size, mtime_ns)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from ..errors import ModelUnreadableError

__all__ = ["HashCache", "autov2", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Full sha256 of a file, hex."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {path} to hash it: {exc.strerror or exc}.") from exc
    return digest.hexdigest()


def autov2(sha256: str) -> str:
    """A1111's "Model hash" (AutoV2): the first 10 hex digits of the sha256."""
    return sha256[:10]


class HashCache:
    """sha256 of files, cached in the project database; recomputed when size or mtime change."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def sha256(self, path: Path) -> str:
        """Cached sha256 of ``path``."""
        real = Path(os.path.realpath(path))
        try:
            st = real.stat()
        except OSError as exc:
            raise ModelUnreadableError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        row = self._conn.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (str(real), st.st_size, st.st_mtime_ns),
        ).fetchone()
        if row:
            return str(row[0])
        value = sha256_file(real)
        self._conn.execute(
            "INSERT OR REPLACE INTO file_hashes (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
            (str(real), st.st_size, st.st_mtime_ns, value),
        )
        return value
