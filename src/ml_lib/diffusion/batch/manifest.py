"""The batch manifest: an append-only JSONL file, one fsynced record per line, that a re-run resumes from.

Records (``kind``): ``item`` (an expanded request, written once per key), ``done`` (its generation id,
seed, output paths, seconds), ``failed`` (the error; a re-run tries it again), ``run`` (start/stop/end
of a run). A line cut short by a kill is skipped on reading and sealed with a newline before the next
record, so nothing after it is lost. One process writes a manifest at a time (an advisory lock).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import OutputError

__all__ = ["Manifest", "ManifestBusyError", "ManifestState"]

log = logging.getLogger(__name__)


class ManifestBusyError(OutputError):
    """Another process is writing the same manifest."""


class ManifestState:
    """What a manifest says so far: the keys listed, done and failed (the last record of a key wins)."""

    def __init__(self) -> None:
        self.listed: set[str] = set()
        self.done: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0

    def add(self, record: dict[str, Any]) -> None:
        """Fold one record in."""
        key = record.get("key")
        if not isinstance(key, str):
            return
        kind = record.get("kind")
        if kind == "item":
            self.listed.add(key)
        elif kind == "done":
            self.done[key] = record
            self.failed.pop(key, None)
        elif kind == "failed" and key not in self.done:
            self.failed[key] = record


def read_state(path: Path) -> ManifestState:
    """Read ``path`` (missing: empty); unreadable lines are counted, not fatal."""
    state = ManifestState()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return state
    except OSError as exc:
        raise OutputError(f"cannot read the manifest {path}: {exc}") from None
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            state.skipped_lines += 1
            continue
        if isinstance(record, dict):
            state.add(record)
    if state.skipped_lines:
        log.warning("%s: skipped %d unreadable line(s) (a run killed mid-write)", path, state.skipped_lines)
    return state


class Manifest:
    """Open ``path`` for appending (``with Manifest(path) as m: m.write({...})``); holds the lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Manifest:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            f = open(self.path, "a+b")
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc}") from None
        try:
            _lock(f, self.path)
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a record cut short by a kill: seal it off
                    f.write(b"\n")
        except BaseException:
            f.close()
            raise
        self._file = f
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and make it durable before returning."""
        if self._file is None:
            raise RuntimeError("the manifest is not open")
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        try:
            self._file.write(line.encode("utf-8"))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write the manifest {self.path}: {exc}") from None

    def state(self) -> ManifestState:
        """The records so far (read from disk)."""
        return read_state(self.path)


def _lock(f: IO[bytes], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock; one writer is the user's business there
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ManifestBusyError(
            f"another batch is writing {path}; wait for it or use another --out"
        ) from None
