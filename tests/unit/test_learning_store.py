"""The history file: records and feedback, migrations, backups, restore on damage, export/import, kill -9."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ml_lib.diffusion import db
from ml_lib.diffusion.errors import (
    HistoryError,
    HistoryImportError,
    RatingError,
    UnknownGenerationError,
)
from ml_lib.diffusion.learning import database
from ml_lib.diffusion.learning.records import (
    Feedback,
    FeedbackKind,
    GenerationRecord,
    OutputFile,
    Override,
    new_id,
    parse_stars,
)
from ml_lib.diffusion.learning.service import History
from ml_lib.diffusion.learning.store import HistoryStore
from ml_lib.diffusion.planning.preferences import LearningContext


def record(gid: str | None = None, created: float = 1000.0, **kw: object) -> GenerationRecord:
    fields: dict[str, object] = dict(
        id=gid or new_id(), created=created, context=LearningContext("sd1", "portrait", "photograph"),
        prompt="a portrait", plan_json="{}", request_json='{"prompt": "a portrait"}',
        values=(("cfg_scale", 5.5), ("steps", 25), ("size", "512x768")),
        overrides=(Override("cfg_scale", 7.0, 5.5),), outputs=(OutputFile("/out/a.png", "ab" * 32),),
        timings=(("denoise", 1.25),), device="cpu",
    )  # fmt: skip
    fields.update(kw)
    return GenerationRecord(**fields)  # type: ignore[arg-type]


def rating(gid: str, stars: int, created: float = 2000.0) -> Feedback:
    return Feedback(new_id(), gid, created, FeedbackKind.RATING, stars, ("too dark",), "note")


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


def test_records_and_feedback_round_trip(store: HistoryStore) -> None:
    rec = record()
    store.add_generation(rec)
    assert store.get(rec.id) == rec
    assert store.by_sha256("ab" * 32) == rec and store.by_sha256("cd" * 32) is None
    event = rating(rec.id, 4)
    store.add_feedback(event)
    assert store.feedback() == [event]
    with pytest.raises(UnknownGenerationError, match="ml-diffusion history"):
        store.add_feedback(rating(new_id(), 3))
    assert store.counts() == {"generations": 1, "outputs": 1, "feedback": 1}


def test_generations_newest_first_and_filtered(store: HistoryStore) -> None:
    old, new = record(created=1.0), record(created=2.0, context=LearningContext("sd1", "landscape"))
    store.add_generation(old)
    store.add_generation(new)
    assert [r.id for r in store.generations()] == [new.id, old.id]
    assert [r.id for r in store.generations(content_type="portrait")] == [old.id]
    assert [r.id for r in store.generations(limit=1)] == [new.id]


def test_migrations_set_the_version_and_refuse_a_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    HistoryStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(database.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer than this ml-lib"):
        HistoryStore(path)


def test_backup_every_n_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "history.sqlite3"
    monkeypatch.setattr("ml_lib.diffusion.learning.store.BACKUP_EVERY", 3)
    with HistoryStore(path) as s:
        s.add_generation(record())  # first write: no backup yet → one is made (stale)
        first = database.backup_path(path).stat().st_mtime_ns
        s.add_generation(record())
        assert database.backup_path(path).stat().st_mtime_ns == first  # fresh backup, 1 write since
        for _ in range(3):
            s.add_generation(record())
    with sqlite3.connect(database.backup_path(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 4


def test_damaged_history_is_restored_from_its_backup(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.sqlite3"
    rec = record()
    with HistoryStore(path) as s:
        s.add_generation(rec)
        s.add_feedback(rating(rec.id, 5))
    path.write_bytes(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING), HistoryStore(path) as s:
        assert s.get(rec.id) == rec and [e.stars for e in s.feedback()] == [5]
    assert "restored the backup" in caplog.text
    assert list(tmp_path.glob("history.sqlite3.damaged-*"))


def test_damaged_history_without_backup_starts_empty_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"garbage" * 1000)
    with caplog.at_level(logging.WARNING), HistoryStore(path) as s:
        assert s.counts()["generations"] == 0
    assert "no sound backup" in caplog.text


def test_a_damaged_catalog_cannot_take_the_history(tmp_path: Path) -> None:
    catalog, history = tmp_path / "ml-diffusion.sqlite3", tmp_path / "history.sqlite3"
    db.connect(catalog).close()
    rec = record()
    with HistoryStore(history) as s:
        s.add_generation(rec)
    catalog.write_bytes(b"garbage" * 1000)
    db.connect(catalog).close()  # the catalog is moved aside and started fresh
    with HistoryStore(history) as s:
        assert s.get(rec.id) == rec


def test_export_import_round_trips_exactly(tmp_path: Path) -> None:
    a, b = History(tmp_path / "a.sqlite3"), History(tmp_path / "b.sqlite3")
    recs = [record(created=float(i)) for i in range(3)]
    for r in recs:
        a.store.add_generation(r)
    a.store.add_feedback(rating(recs[1].id, 2))
    a.store.add_feedback(
        Feedback(new_id(), recs[0].id, 5.0, FeedbackKind.EDIT, other_id=recs[1].id,
                 changes=(Override("cfg_scale", 7.0, 5.5), Override("lora:x", 0.8, None)))
    )  # fmt: skip
    a.reset()
    a.export(tmp_path / "h.jsonl")
    assert b.import_(tmp_path / "h.jsonl") == (3, 2)
    assert b.import_(tmp_path / "h.jsonl") == (0, 0)  # importing twice adds nothing
    b.export(tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_text() == (tmp_path / "h.jsonl").read_text()
    assert b.store.learn_since == a.store.learn_since
    a.close()
    b.close()


HEADER = '{"type": "ml-diffusion-history", "version": 1}\n'


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ('{"type": "generation"}\n', "line 1: not an ml-diffusion history header"),
        (HEADER + '{"type": "generation", "record": {"id": 3}}\n', "line 3: Gen"),
        (HEADER + "not json\n", "line 3 is not"),
    ],
)  # fmt: skip
def test_a_bad_import_imports_nothing(tmp_path: Path, text: str, match: str) -> None:
    good = record()
    line = '{"type": "generation", "record": ' + _json(good) + "}\n"
    (tmp_path / "bad.jsonl").write_text(text.replace("\n", "\n" + line, 1) if "version" in text else text)
    h = History(tmp_path / "h.sqlite3")
    with pytest.raises(HistoryImportError, match=match):
        h.import_(tmp_path / "bad.jsonl")
    assert h.store.counts()["generations"] == 0
    h.close()


def _json(rec: GenerationRecord) -> str:
    import json

    from ml_lib.diffusion._codec import to_jsonable

    return json.dumps(to_jsonable(rec))


@pytest.mark.parametrize("bad", [0, 6, "7", "meh", True, -1])
def test_ratings_out_of_range_are_refused(bad: object) -> None:
    with pytest.raises(RatingError):
        parse_stars(bad)  # type: ignore[arg-type]


def test_thumbs_and_text_stars() -> None:
    assert [parse_stars(v) for v in ("up", "down", "4", 3)] == [5, 1, 4, 3]


def test_rating_survives_kill_9_right_after_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    rec = record()
    with HistoryStore(path) as s:
        s.add_generation(rec)
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from ml_lib.diffusion.learning.service import History
        h = History(Path({str(path)!r}))
        h.rate({rec.id!r}, 4, ("keeper",))
        print("rated", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "rated"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with HistoryStore(path) as s:
        assert [(e.stars, e.tags) for e in s.feedback()] == [(4, ("keeper",))]
