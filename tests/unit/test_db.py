"""The database: migrations race-free across processes, a damaged file moved aside and rebuilt."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import sys
from pathlib import Path

import pytest

from ml_lib.diffusion import db
from ml_lib.diffusion.db import MIGRATIONS, connect, schema_version

_PROCESSES = 8
_ROUNDS = 4


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _start(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:  # type: ignore[name-defined]
    barrier.wait(timeout=60)
    conn = connect(Path(path))
    conn.execute("SELECT count(*) FROM models").fetchone()
    conn.close()


def _race(path: Path) -> list[int | None]:
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    barrier = ctx.Barrier(_PROCESSES)
    procs = [ctx.Process(target=_start, args=(str(path), barrier)) for _ in range(_PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    return [p.exitcode for p in procs]


def test_many_processes_starting_on_a_fresh_home_all_succeed(tmp_path: Path) -> None:
    for n in range(_ROUNDS):
        path = tmp_path / f"home{n}" / "ml-diffusion.sqlite3"
        assert _race(path) == [0] * _PROCESSES, f"round {n}"
        conn = connect(path)
        assert schema_version(conn) == len(MIGRATIONS)
        assert _tables(conn) == {"file_digests", "models"}
        conn.close()


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    connect(path).close()
    conn = connect(path)
    db._migrate(conn)  # nothing left to do: no error, no change
    assert schema_version(conn) == len(MIGRATIONS)
    assert _tables(conn) == {"file_digests", "models"}


def test_a_version_newer_than_known_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    conn = connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(db.ConfigError, match="newer"):
        connect(path)


def _damaged_copies(folder: Path) -> list[Path]:
    return sorted(folder.glob("ml-diffusion.sqlite3.damaged-*"))


def _assert_fresh(conn: sqlite3.Connection) -> None:
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 0


def test_a_garbage_file_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ml-diffusion.sqlite3"
    garbage = b"this is not a database " * 500
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="ml_lib.diffusion.db"):
        conn = connect(path)
    _assert_fresh(conn)
    [aside] = _damaged_copies(tmp_path)
    assert aside.read_bytes() == garbage
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "damaged" in warnings[0] and str(aside) in warnings[0]
    assert "\n" not in warnings[0]


def test_a_truncated_file_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "ml-diffusion.sqlite3"
    conn = connect(path)
    conn.executemany(
        "INSERT INTO file_digests VALUES (?, 'sha256', 1, 1, ?)",
        [(f"/m/{i}", "x" * 500) for i in range(3000)],
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    conn = connect(path)
    _assert_fresh(conn)
    assert len(_damaged_copies(tmp_path)) == 1


def test_corruption_only_quick_check_sees_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "ml-diffusion.sqlite3"
    conn = connect(path)
    conn.executemany(
        "INSERT INTO models VALUES "
        "(?, 'r', ?, 'k', 'checkpoint', 'sd1', 'ok', 1, 1, '', '', NULL, NULL, NULL, '', '{}')",
        [(f"/m/{i}", f"name{i}") for i in range(2000)],
    )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page * 3, len(data) - page, page * 2):  # scribble over the middle of many pages
        data[start + 100 : start + 300] = b"\xff" * 200
    path.write_bytes(bytes(data))
    conn = connect(path)
    _assert_fresh(conn)
    assert len(_damaged_copies(tmp_path)) == 1


def test_a_healthy_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ml-diffusion.sqlite3"
    conn = connect(path)
    conn.execute("INSERT INTO file_digests VALUES ('/a', 'sha256', 1, 1, 'd')")
    conn.close()
    conn = connect(path)
    assert conn.execute("SELECT count(*) FROM file_digests").fetchone()[0] == 1
    assert _damaged_copies(tmp_path) == []


def test_an_unwritable_folder_still_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(db.ConfigError, match="writable"):
        connect(blocker / "sub" / "ml-diffusion.sqlite3")


def test_many_processes_starting_on_a_damaged_file_recover_it_once(tmp_path: Path) -> None:
    for n in range(2):
        path = tmp_path / f"home{n}" / "ml-diffusion.sqlite3"
        path.parent.mkdir()
        path.write_bytes(b"\0garbage" * 4000)
        assert _race(path) == [0] * _PROCESSES, f"round {n}"
        assert len(_damaged_copies(path.parent)) == 1
        _assert_fresh(connect(path))


def test_a_damaged_file_that_cannot_be_moved_is_a_typed_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ml-diffusion.sqlite3"
    path.write_bytes(b"garbage" * 1000)

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(db.os, "replace", refuse)
    with pytest.raises(db.DatabaseDamagedError, match=r"damaged .* move or delete it by hand") as caught:
        connect(path)
    assert "\n" not in str(caught.value) and "writable folder" not in str(caught.value)
