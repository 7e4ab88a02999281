"""Atomic, collision-free image saving.

The image is encoded into a hidden temp file (``.tmp-…``) in the target folder, flushed and fsynced,
then published under its final name with ``os.link`` (which fails instead of overwriting). Where hard
links are not supported the name is reserved with ``O_CREAT | O_EXCL`` and the temp file moved over
it with ``os.replace``. On any error the temp file (and a reserved name) is removed: no partial file.
A save killed outright (kill -9, power loss) leaves its temp file; each save first removes those of
ours (``.tmp-`` + 16 hex digits + an image extension, regular files) older than an hour.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from itertools import count, islice
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from .._files import TEMP_PREFIX, fsync_dir, new_temp, remove_quietly, write_error
from ..errors import DiskFullError, OutputError, OutputNotWritableError
from .metadata import SaveOptions, image_save_kwargs
from .naming import MAX_STEM_BYTES, NameContext, next_counter, render_stem, safe_stem, template_tokens

__all__ = [
    "STALE_TEMP_SECONDS",
    "TEMP_PREFIX",
    "Encoder",
    "check_output_dir",
    "clean_stale_temps",
    "encode_image",
    "save_image",
]

logger = logging.getLogger(__name__)

#: A temp file of ours older than this belongs to a save that was killed.
STALE_TEMP_SECONDS = 3600
_OUR_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{16}\.(?:png|jpg|webp)")
_MAX_ATTEMPTS = 10_000
_NO_HARDLINK = frozenset(
    e
    for e in (
        errno.EPERM,
        errno.EXDEV,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOSYS", None),
    )
    if e is not None
)

#: Writes ``image`` with ``options`` into an open binary file (injectable for tests).
Encoder = Callable[[Image.Image, BinaryIO, SaveOptions], None]


def encode_image(image: Image.Image, fp: BinaryIO, options: SaveOptions) -> None:
    """The default encoder: Pillow, with the metadata in ``options``."""
    options.save(image, fp)


def check_output_dir(directory: Path) -> None:
    """Create ``directory`` and prove it takes files (a hidden probe file, written and removed) before any
    work starts; raises OutputNotWritableError (DiskFullError when the disk is full)."""
    fix = "choose another folder with --out (or set ML_DIFFUSION_OUTPUT)"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not directory.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(directory))
        fd, probe = new_temp(directory, ".probe")
    except OSError as exc:
        error = write_error(exc, directory, "save images", fix)
        if isinstance(error, DiskFullError):
            raise error from exc
        raise OutputNotWritableError(
            f"Cannot save images in {directory} ({exc.strerror or exc}): it must be a folder you can write "
            f"to (not a file, not read-only, not a system folder such as /proc); {fix}."
        ) from exc
    os.close(fd)
    remove_quietly(probe)


def save_image(
    image: Image.Image,
    directory: Path,
    stem_template: str,
    ctx: NameContext,
    infotext: str,
    plan_json: str | None,
    fmt: str = "png",
    *,
    encoder: Encoder = encode_image,
    generation_id: str | None = None,
    extra_chunks: tuple[tuple[str, str], ...] = (),
) -> Path:
    """Save ``image`` with its metadata in ``directory`` under a new name from ``stem_template``.

    ``ctx.counter`` is ignored: the writer uses the next free A1111 counter. An existing file is never
    overwritten: the next counter (or a ``-2``, ``-3`` … suffix when the template has no ``[counter]``)
    is tried instead. Raises OutputNotWritableError, DiskFullError or OutputError; nothing partial is
    left behind. ``extra_chunks`` are further PNG text chunks (the ComfyUI graph).
    """
    options = image_save_kwargs(
        fmt, infotext, plan_json, generation_id=generation_id, extra_chunks=extra_chunks
    )
    uses_counter = "counter" in template_tokens(stem_template)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, directory, "save an image", "choose another folder with --out") from exc

    clean_stale_temps(directory)
    temp = _write_temp(image, directory, options, encoder)
    try:
        names = _candidates(directory, stem_template, ctx, uses_counter)
        final = _publish(temp, directory, names, options.extension)
    finally:
        remove_quietly(temp)
    fsync_dir(directory)
    logger.info("Saved %s", final)
    return final


def clean_stale_temps(directory: Path, max_age: float = STALE_TEMP_SECONDS) -> int:
    """Remove our temp files (name pattern, regular file, not a link) older than ``max_age`` seconds.

    Returns how many were removed; a file that cannot be removed is logged and left.
    """
    try:
        names = [n for n in os.listdir(directory) if _OUR_TEMP.fullmatch(n)]
    except OSError as exc:
        logger.warning("Could not list %s to clean stale temp files: %s", directory, exc)
        return 0
    cutoff = time.time() - max_age
    removed = 0
    for name in names:
        path = directory / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue  # another save published or removed it meanwhile
        if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
            remove_quietly(path)
            removed += not path.exists()
    if removed:
        logger.info("Removed %d stale temp file(s) left in %s by interrupted saves", removed, directory)
    return removed


def _write_temp(image: Image.Image, directory: Path, options: SaveOptions, encoder: Encoder) -> Path:
    """Encode into a fresh hidden temp file, flushed and fsynced; removed again on any failure."""
    try:
        fd, temp = new_temp(directory, options.extension)
    except OSError as exc:
        raise write_error(exc, directory, "save an image", "choose another folder with --out") from exc
    done = False
    try:
        with os.fdopen(fd, "wb") as fh:
            encoder(image, fh, options)
            fh.flush()
            os.fsync(fh.fileno())
        done = True
    except OSError as exc:
        raise write_error(exc, directory, "save an image", "choose another folder with --out") from exc
    except ValueError as exc:
        raise OutputError(f"Could not encode the image as {options.format}: {exc}") from exc
    finally:
        if not done:
            remove_quietly(temp)
    return temp


def _candidates(directory: Path, template: str, ctx: NameContext, uses_counter: bool) -> Iterator[str]:
    """Stems to try in order: successive counters, then ``-2``, ``-3`` … suffixes."""
    base = render_stem(template, ctx)
    if uses_counter:
        previous = None
        for number in count(next_counter(directory)):
            stem = render_stem(template, dataclasses.replace(ctx, counter=number))
            if stem == previous:  # the counter was cut off by the length cap: fall back to suffixes
                break
            previous = base = stem
            yield stem
    else:
        yield base
    for n in count(2):
        suffix = f"-{n}"
        yield safe_stem(base, max_bytes=MAX_STEM_BYTES - len(suffix)) + suffix


def _publish(temp: Path, directory: Path, stems: Iterator[str], extension: str) -> Path:
    """Give ``temp`` the first free name; never replaces an existing file."""
    use_link = True
    for stem in islice(stems, _MAX_ATTEMPTS):
        final = directory / f"{stem}{extension}"
        if use_link:
            try:
                os.link(temp, final)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _NO_HARDLINK:
                    raise write_error(
                        exc, directory, "save an image", "choose another folder with --out"
                    ) from exc
                logger.debug("hard links unsupported in %s (%s); reserving names instead", directory, exc)
                use_link = False
            else:
                return final
        if _reserve_and_replace(temp, final, directory):
            return final
    raise OutputError(
        f"No free file name in {directory} after {_MAX_ATTEMPTS} attempts; "
        "use a name template with [counter] or [datetime], or choose another folder with --out."
    )


def _reserve_and_replace(temp: Path, final: Path, directory: Path) -> bool:
    """Claim ``final`` with O_EXCL, then move ``temp`` over it; False when the name is taken."""
    try:
        fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    except OSError as exc:
        raise write_error(exc, directory, "save an image", "choose another folder with --out") from exc
    os.close(fd)
    placed = False
    try:
        os.replace(temp, final)
        placed = True
    except OSError as exc:
        raise write_error(exc, directory, "save an image", "choose another folder with --out") from exc
    finally:
        if not placed:
            remove_quietly(final)
    return True
