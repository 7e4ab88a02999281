"""File hashes as A1111 and Civitai show them, computed once and cached by (path, size, mtime_ns).

- ``sha256``: the full-file sha256; its first 10 hex digits are A1111's "Model hash" (Civitai AutoV2).
- ``addnet``: kohya's additional-networks hash, the sha256 of the bytes after the safetensors header;
  A1111 shows its first 12 hex digits for LoRAs ("Lora hashes").

Both are computed in one read when both are wanted. Symlinks are resolved, so a file reached through
two links is hashed once. Only regular files are hashed: a FIFO, a device (a link to ``/dev/zero``) or a
folder raises :class:`ModelUnreadableError` at once (opened non-blocking, never read), and so does a file
that grows or shrinks while it is read; callers catch it for that one file and go on with the rest.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import struct
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModelUnreadableError
from .records import FileHashes

__all__ = ["ADDNET", "SHA256", "HashCache", "addnet_file", "autov2", "sha256_file"]

SHA256, ADDNET = "sha256", "addnet"
_CHUNK = 1 << 20
OnBytes = Callable[[int], None]


def _not_regular(path: Path) -> ModelUnreadableError:
    return ModelUnreadableError(
        f"{path} is not a regular file (a FIFO, device or folder), so it is not hashed; "
        "remove it from the model folder or point to the real file."
    )


def _open_regular(path: Path) -> tuple[int, int]:
    """``(fd, size)`` of ``path`` opened without blocking; ModelUnreadableError unless a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {path} to hash it: {exc.strerror or exc}.") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_regular(path)
    return fd, st.st_size


def _changed(path: Path) -> ModelUnreadableError:
    return ModelUnreadableError(f"{path} changed while it was hashed (its size moved); hash it again.")


def _digests(
    path: Path, full: bool, addnet: bool, on_bytes: OnBytes | None = None, size_seen: int | None = None
) -> dict[str, str]:
    """One pass over ``path`` computing the wanted digests; reads no more than the size it had at open.

    ``size_seen``: the size the caller stat'ed (and will store the digests under); a different size at
    open means the file changed in between.
    """
    whole, tail = hashlib.sha256(), hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    fd, size = _open_regular(path)
    if size_seen is not None and size != size_seen:
        os.close(fd)
        raise _changed(path)
    try:
        with os.fdopen(fd, "rb", buffering=0) as fh:
            skip = 0
            if addnet:
                head = fh.read(8)
                if len(head) < 8:
                    raise ModelUnreadableError(f"{path} is too short to have a safetensors header.")
                skip = 8 + struct.unpack("<Q", head)[0]
                fh.seek(0 if full else skip)
                if not full:
                    skip = 0
            pos, expected = 0, size - fh.tell()
            while n := fh.readinto(view[: min(_CHUNK, expected - pos + 1)]):
                if pos + n > expected:
                    raise _changed(path)
                chunk = view[:n]
                if full:
                    whole.update(chunk)
                if addnet:
                    if pos >= skip:
                        tail.update(chunk)
                    elif pos + n > skip:
                        tail.update(chunk[skip - pos :])
                pos += n
                if on_bytes is not None:
                    on_bytes(n)
            if pos != expected:
                raise _changed(path)
    except OSError as exc:
        raise ModelUnreadableError(f"Cannot read {path} to hash it: {exc.strerror or exc}.") from exc
    out = {}
    if full:
        out[SHA256] = whole.hexdigest()
    if addnet:
        out[ADDNET] = tail.hexdigest()
    return out


def sha256_file(path: Path, on_bytes: OnBytes | None = None) -> str:
    """Full sha256 of a file, hex."""
    return _digests(path, True, False, on_bytes)[SHA256]


def addnet_file(path: Path, on_bytes: OnBytes | None = None) -> str:
    """kohya's addnet hash: sha256 of the bytes after the 8-byte length and the JSON header, hex."""
    return _digests(path, False, True, on_bytes)[ADDNET]


def autov2(sha256: str) -> str:
    """A1111's "Model hash" (AutoV2): the first 10 hex digits of the sha256."""
    return sha256[:10]


class HashCache:
    """Digests of files, cached in the project database; recomputed when size or mtime change.

    ``bytes_hashed`` counts the bytes read to compute digests (cache hits read nothing).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.bytes_hashed = 0
        self._pending: dict[tuple[str, str], tuple[int, int, str]] | None = None

    @staticmethod
    def _stat(path: Path) -> tuple[Path, os.stat_result]:
        real = Path(os.path.realpath(path))
        try:
            st = real.stat()
        except OSError as exc:
            raise ModelUnreadableError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path)
        return real, st

    def cached(self, path: Path, algo: str = SHA256) -> str | None:
        """The cached digest of ``path`` if it is still valid; never reads the file."""
        try:
            real, st = self._stat(path)
        except ModelUnreadableError:
            return None
        return self._lookup(real, st, algo)

    def _lookup(self, real: Path, st: os.stat_result, algo: str) -> str | None:
        pending = self._pending.get((str(real), algo)) if self._pending else None
        if pending is not None and pending[:2] == (st.st_size, st.st_mtime_ns):
            return pending[2]
        row = self._conn.execute(
            "SELECT digest FROM file_digests WHERE path = ? AND algo = ? AND size = ? AND mtime_ns = ?",
            (str(real), algo, st.st_size, st.st_mtime_ns),
        ).fetchone()
        return str(row[0]) if row else None

    def _store(self, real: Path, st: os.stat_result, digests: dict[str, str]) -> None:
        for algo, digest in digests.items():
            if self._pending is not None:
                self._pending[(str(real), algo)] = (st.st_size, st.st_mtime_ns, digest)
        if self._pending is None:
            self._write([(str(real), algo, st.st_size, st.st_mtime_ns, d) for algo, d in digests.items()])

    def _write(self, rows: list[tuple[str, str, int, int, str]]) -> None:
        if not rows:
            return
        sql = (
            "INSERT OR REPLACE INTO file_digests (path, algo, size, mtime_ns, digest) VALUES (?, ?, ?, ?, ?)"
        )
        if self._conn.in_transaction:
            self._conn.executemany(sql, rows)
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def hold(self) -> None:
        """Keep new digests in memory until :meth:`flush` (for dry runs, which must not write)."""
        if self._pending is None:
            self._pending = {}

    def flush(self) -> None:
        """Write the digests held back by :meth:`batch` so far."""
        if self._pending:
            rows = [(path, algo, size, mtime, d) for (path, algo), (size, mtime, d) in self._pending.items()]
            self._pending = {}
            self._write(rows)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold digests back and write them together (one commit, not one per file) at the end."""
        self._pending = {}
        try:
            yield
        finally:
            self.flush()
            self._pending = None

    def remember(self, path: Path, algo: str, digest: str) -> None:
        """Store a digest known by other means (a moved file whose content was verified)."""
        real, st = self._stat(path)
        self._store(real, st, {algo: digest})

    def digests(self, path: Path, algos: Collection[str], on_bytes: OnBytes | None = None) -> FileHashes:
        """The wanted digests (``sha256``, ``addnet``) of ``path``, computing the missing ones in one read."""
        real, st = self._stat(path)
        out = {a: d for a in algos if (d := self._lookup(real, st, a)) is not None}
        missing = [a for a in algos if a not in out]
        if missing:
            if missing == [SHA256] and on_bytes is None:
                computed = {SHA256: sha256_file(real)}
            else:
                computed = _digests(real, SHA256 in missing, ADDNET in missing, on_bytes, st.st_size)
            self.bytes_hashed += st.st_size
            self._store(real, st, computed)
            out.update(computed)
        return FileHashes(out.get(SHA256), out.get(ADDNET))

    def sha256(self, path: Path, on_bytes: OnBytes | None = None) -> str:
        """Cached sha256 of ``path``."""
        return str(self.digests(path, (SHA256,), on_bytes).sha256)

    def addnet(self, path: Path, on_bytes: OnBytes | None = None) -> str:
        """Cached addnet hash of a safetensors ``path``."""
        return str(self.digests(path, (ADDNET,), on_bytes).addnet)
