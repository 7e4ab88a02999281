"""Walk model folders: model files and diffusers folders, symlinks followed once, loops and unreadable
folders reported, FIFOs and device files named (never opened)."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .layouts import ModelDir, Problem
from .records import MODEL_SUFFIXES, StorageFormat

__all__ = ["Found", "walk"]

log = logging.getLogger(__name__)

_SPECIAL = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISSOCK, "a socket"))  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Found:
    """A model file (or diffusers folder) met by the walk, with what the listing already told."""

    path: Path
    model_dir: ModelDir
    rel_name: str
    stat: os.stat_result | None
    siblings: dict[str, os.DirEntry[str]]
    folder: bool = False
    problem: str | None = None

    @property
    def format(self) -> StorageFormat:
        """Storage format from the suffix (diffusers for folders)."""
        if self.folder:
            return StorageFormat.DIFFUSERS
        return MODEL_SUFFIXES[self.path.suffix.lower()]


def _rel(model_dir: ModelDir, path: Path, strip_suffix: bool = True) -> str:
    rel = path.relative_to(model_dir.path).as_posix() if path != model_dir.path else ""
    if strip_suffix and "." in rel.rsplit("/", 1)[-1]:
        rel = rel[: rel.rfind(".")]
    parts = [p for p in (model_dir.label, rel) if p]
    return "/".join(parts) or path.name


def _diffusers_component(entries: dict[str, os.DirEntry[str]]) -> bool:
    """A diffusers model folder of one component (config.json naming a diffusers class + weights)."""
    if "config.json" not in entries or not any(n.startswith("diffusion_pytorch_model") for n in entries):
        return False
    try:
        with open(entries["config.json"].path, encoding="utf-8") as fh:
            return "_class_name" in json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return False


def _has_weights(folder: Path) -> bool:
    """Whether a diffusers pipeline folder holds weights (not a weightless config folder)."""
    try:
        subs = [sub for sub in folder.iterdir() if sub.is_dir()]
        return any(f.suffix in MODEL_SUFFIXES for sub in subs for f in sub.iterdir())
    except OSError:
        return False


def walk(model_dir: ModelDir, visited: set[tuple[int, int]], problems: list[Problem]) -> Iterator[Found]:
    """Model files and diffusers folders under ``model_dir``; ``visited`` folders are not walked again.

    A non-recursive ``model_dir`` (loose files of a layout root) yields only its own files, and does not
    mark its folder visited (a recursive walk of the same folder elsewhere still happens).
    """
    stack: list[tuple[Path, frozenset[tuple[int, int]]]] = [(model_dir.path, frozenset())]
    files_seen: set[tuple[int, int]] = set()
    while stack:
        folder, ancestors = stack.pop()
        try:
            st = os.stat(folder)
            ident = (st.st_dev, st.st_ino)
            if ident in ancestors:
                problems.append(
                    Problem(str(folder), "symlink loop (leads back to a folder above it); not followed")
                )
                continue
            if ident in visited:
                log.debug("already walked %s (reached again through a symlink)", folder)
                continue
            if model_dir.recursive:
                visited.add(ident)
            with os.scandir(folder) as it:
                entries = {e.name: e for e in it}
        except OSError as exc:
            problems.append(Problem(str(folder), f"unreadable folder, skipped: {exc.strerror or exc}"))
            continue
        diffusers = model_dir.recursive and ("model_index.json" in entries or _diffusers_component(entries))
        if diffusers and ("config.json" in entries or _has_weights(folder)):
            yield Found(folder, model_dir, _rel(model_dir, folder, False), st, entries, folder=True)
            continue
        below = ancestors | {ident}
        for name in sorted(entries, reverse=True):
            entry = entries[name]
            if name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if model_dir.recursive:
                    stack.append((path, below))
                continue
            if path.suffix.lower() not in MODEL_SUFFIXES:
                continue
            try:
                fst = entry.stat()
            except FileNotFoundError:
                problems.append(Problem(str(path), "broken symlink (its target does not exist)"))
                continue
            except OSError as exc:
                yield Found(path, model_dir, _rel(model_dir, path), None, entries,
                            problem=f"cannot stat: {exc.strerror or exc}")  # fmt: skip
                continue
            special = next((what for test, what in _SPECIAL if test(fst.st_mode)), None)
            if special:
                yield Found(path, model_dir, _rel(model_dir, path), fst, entries,
                            problem=f"{special}, not a regular file; not opened")  # fmt: skip
                continue
            if (fst.st_dev, fst.st_ino) in files_seen:
                log.debug("%s is a second link to a file already found", path)
                continue
            files_seen.add((fst.st_dev, fst.st_ino))
            yield Found(path, model_dir, _rel(model_dir, path), fst, entries)
