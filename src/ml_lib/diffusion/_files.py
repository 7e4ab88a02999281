"""Helpers shared by every atomic file writer: errno → typed error, temp clean-up, directory fsync."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from .errors import DiskFullError, OutputError, OutputNotWritableError

__all__ = ["fsync_dir", "remove_quietly", "write_error"]

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
