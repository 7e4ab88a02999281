"""Hashing refuses what is not a regular file at once, and never reads more than the file's size."""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.hashing import HashCache, addnet_file, sha256_file
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.errors import ModelUnreadableError

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero")


def _call(kind: str, path: str, db: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        if kind == "sha256":
            sha256_file(Path(path))
        elif kind == "addnet":
            addnet_file(Path(path))
        else:
            HashCache(connect(Path(db))).digests(Path(path), ("sha256", "addnet"))
    except ModelUnreadableError as exc:
        queue.put(str(exc))
        return
    queue.put("no error")


def _outcome(kind: str, path: Path, tmp_path: Path, timeout: float = 20.0) -> str:
    """What hashing ``path`` ends in, in a child process that is killed if it hangs."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_call, args=(kind, str(path), str(tmp_path / "db.sqlite3"), queue))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"hashing {path.name} with {kind} hung")
    return str(queue.get(timeout=5))


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.safetensors"
    os.mkfifo(path)
    return path


@pytest.fixture
def zero_link(tmp_path: Path) -> Path:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    path = tmp_path / "zero.safetensors"
    path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["sha256", "addnet", "cache"])
def test_a_fifo_is_refused_without_blocking(kind: str, fifo: Path, tmp_path: Path) -> None:
    message = _outcome(kind, fifo, tmp_path)
    assert "not a regular file" in message and str(fifo) in message


@pytest.mark.parametrize("kind", ["sha256", "addnet", "cache"])
def test_a_link_to_dev_zero_is_refused_without_reading_forever(
    kind: str, zero_link: Path, tmp_path: Path
) -> None:
    assert "not a regular file" in _outcome(kind, zero_link, tmp_path)


def test_one_bad_file_does_not_stop_the_rest(fifo: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.bin"
    good.write_bytes(b"abc")
    cache = HashCache(connect(tmp_path / "db.sqlite3"))
    results: dict[str, str] = {}
    for path in (fifo, good):
        try:
            results[path.name] = cache.sha256(path)
        except ModelUnreadableError as exc:
            results[path.name] = type(exc).__name__
    assert results == {
        "pipe.safetensors": "ModelUnreadableError",
        "good.bin": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }


def test_a_file_that_grows_while_hashed_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    def smaller(fd: int) -> os.stat_result:  # the file as it was when stat'ed, before it grew
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 10, *st[7:]))

    monkeypatch.setattr(os, "fstat", smaller)
    with pytest.raises(ModelUnreadableError, match="changed while"):
        sha256_file(path)
