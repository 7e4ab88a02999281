"""The one way the program writes a file: a hidden temp file beside the target, fsynced, then
``os.replace``d over it (and the folder entry fsynced), so a crash or a full disk never leaves a partial
file; plus errno → typed error, temp clean-up and directory fsync for writers with their own naming.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DiskFullError, OutputError, OutputNotWritableError

__all__ = [
    "TEMP_PREFIX",
    "atomic_path",
    "fsync_dir",
    "fsync_file",
    "new_temp",
    "remove_quietly",
    "write_error",
]

#: Hidden temp files start with this (stale ones are recognisable and cleaned).
TEMP_PREFIX = ".tmp-"

log = logging.getLogger(__name__)

_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR})


def write_error(exc: OSError, folder: Path, what: str, fix: str) -> OutputError:
    """The typed error for a failed write of ``what`` into ``folder``; ``fix`` says what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return DiskFullError(
            f"The disk is full: could not {what} in {folder} ({reason}). Free space or {fix}."
        )
    if exc.errno in _NOT_WRITABLE:
        return OutputNotWritableError(
            f"Cannot {what} in {folder} ({reason}): it must be a folder you can write to "
            f"(not a file, not read-only); or {fix}."
        )
    return OutputError(f"Could not {what} in {folder}: {reason}.")


def remove_quietly(path: Path) -> None:
    """Remove a temporary file; a missing file is fine, other failures are logged."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("Could not remove temporary file %s: %s", path, exc)


def fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable (POSIX only; best effort)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        log.debug("cannot open %s to fsync it: %s", folder, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        log.debug("cannot fsync %s: %s", folder, exc)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_temp(folder: Path, suffix: str = "") -> tuple[int, Path]:
    """Create a fresh hidden temp file in ``folder`` (mode 0o666 less the umask) → (open fd, path)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{suffix}"
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise OutputError(
        f"Could not create a temporary file in {folder}; remove stale {TEMP_PREFIX}* files there."
    )


@contextmanager
def atomic_path(target: Path, *, what: str, fix: str) -> Iterator[Path]:
    """A temp path beside ``target`` to write to; when the block ends normally the file is fsynced and
    moved over ``target``; on any failure it is removed. OSErrors become typed errors saying ``what``
    could not be done and ``fix``."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = new_temp(folder, target.suffix)
        mode = os.fstat(fd).st_mode & 0o777  # 0o666 less the umask, as for any new file
        os.close(fd)
    except OSError as exc:
        raise write_error(exc, folder, what, fix) from exc
    placed = False
    try:
        yield temp
        os.chmod(temp, mode)  # writers that replace the file (safetensors) leave it owner-only
        fsync_file(temp)
        os.replace(temp, target)
        placed = True
    except OSError as exc:
        raise write_error(exc, folder, what, fix) from exc
    finally:
        if not placed:
            remove_quietly(temp)
    fsync_dir(folder)
