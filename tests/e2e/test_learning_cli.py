"""Feedback and learning as a user meets them, on the built-in demo model: every generation recorded, the
image carrying its id, ratings by path / id / result, edits detected, learned values in the next plan,
--no-learn and ML_DIFFUSION_LEARN=0, and the CLI verbs with one-line errors that write nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.plan import Source
from ml_lib.diffusion.settings import Settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    monkeypatch.delenv("ML_DIFFUSION_LEARN", raising=False)
    return tmp_path / "home"


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _feedback_rows(home: Path) -> int:
    path = home / "history.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM feedback WHERE kind = 'rating'").fetchone()[0])


def test_generations_are_recorded_rated_and_learned_from(home: Path) -> None:
    with ImageGenerator(Settings.from_env()) as gen:
        first = gen.generate("a red circle on the left", seed=1)
        assert len(first.generation_id) == 32 and first.to_dict()["generation_id"] == first.generation_id
        assert gen.info(first.paths[0]).generation_id == first.generation_id
        assert gen.info(first.paths[0]).parsed is not None  # the A1111 infotext is still there
        # by image path, by result, by id
        gen.rate(first.paths[0], 2, tags=("too dark",))
        second = gen.generate("a red circle on the left", seed=1, cfg_scale=2.5)
        gen.rate(second, "up")
        third = gen.generate("a red circle on the left", seed=2, cfg_scale=2.5)
        gen.rate(third.generation_id, 5, note="better")
        entries = gen.history(10)
        assert [e.stars for e in entries] == [5, 5, 2]
        assert entries[2].edited_into == second.generation_id  # regenerated with changes, detected
        assert [(o.field, o.recommended, o.used) for o in entries[1].record.overrides] == [
            ("cfg_scale", 4.0, 2.5)
        ]
        assert entries[0].record.overrides == ()  # by then 2.5 was what we recommended
        assert entries[1].edited_into is None  # the same values again with another seed: a re-roll
        plan = gen.plan("a blue square on the right", seed=3)
        learned = plan.decision("cfg_scale")
        assert plan.cfg_scale == 2.5 and learned is not None and learned.source is Source.LEARNED
        assert "lowered CFG" in learned.reason
        assert gen.plan("a blue square on the right", seed=3, learn=False).cfg_scale == 4.0


def test_a_copy_without_metadata_is_matched_by_its_bytes_and_a_foreign_image_is_refused(
    home: Path, tmp_path: Path
) -> None:
    with ImageGenerator(Settings.from_env()) as gen:
        result = gen.generate("a green triangle", seed=4)
        copy = tmp_path / "copy.png"
        copy.write_bytes(result.paths[0].read_bytes())
        assert gen.learning.find(copy).id == result.generation_id
        foreign = tmp_path / "foreign.png"
        Image.new("RGB", (8, 8), (1, 2, 3)).save(foreign)
    before = _feedback_rows(home)
    out = invoke("rate", str(foreign), "4")
    assert out.exit_code == 2 and out.output.count("\n") == 1 and "carries no generation id" in out.output
    assert _feedback_rows(home) == before


def test_learning_off_by_setting_plans_like_today(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ImageGenerator(Settings.from_env()) as gen:
        for seed in range(3):
            gen.generate("a red circle", seed=seed, cfg_scale=2.0)
        assert gen.plan("a red circle", seed=9).cfg_scale == 2.0
    monkeypatch.setenv("ML_DIFFUSION_LEARN", "0")
    with ImageGenerator(Settings.from_env()) as gen:
        plan = gen.plan("a red circle", seed=9)
        assert plan.cfg_scale == 4.0 and all(d.source is not Source.LEARNED for d in plan.decisions)


def test_cli_rate_history_stats_learning(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    made = invoke("generate", "a red circle", "--seed", "1", "--out", str(out), "--json")
    assert made.exit_code == 0, made.output
    gid = json.loads(made.stdout)["generation_id"]
    (image,) = out.glob("*.png")
    assert invoke("rate", str(image), "4", "--tag", "favourite").exit_code == 0
    again = invoke("generate", "a red circle", "--seed", "1", "--cfg", "2", "--out", str(out), "--no-learn")
    assert again.exit_code == 0, again.output
    rows = json.loads(invoke("history", "--json").stdout)
    assert (
        [r["stars"] for r in rows] == [None, 4] and rows[1]["id"] == gid and rows[1]["tags"] == ["favourite"]
    )
    assert rows[1]["edited_into"] == rows[0]["id"] and rows[0]["overrides"] == [["cfg_scale", 4.0, 2.0]]
    stats = invoke("stats")
    assert "2 generations, 1 rated" in stats.output and "cfg_scale 1" in stats.output
    assert "nothing learned yet" in invoke("learning", "show").output  # one change is not enough evidence
    invoke("generate", "a red circle", "--seed", "2", "--cfg", "2", "--out", str(out))
    assert "cfg_scale = 2.0" in invoke("learning", "show").output
    for bad, message in (
        (("rate", gid, "6"), "out of range"),
        (("rate", "f" * 32, "3"), "No recorded generation"),
    ):
        result = invoke(*bad)
        assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1
    assert _feedback_rows(home) == 1
    export = tmp_path / "h.jsonl"
    assert invoke("learning", "export", str(export)).exit_code == 0
    assert invoke("learning", "reset", "--yes").exit_code == 0
    assert "nothing learned yet" in invoke("learning", "show").output  # reset: evidence before now ignored
    assert json.loads(invoke("history", "--json").stdout)[2]["stars"] == 4  # … and the ratings are kept
    other = tmp_path / "other-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ML_DIFFUSION_HOME", str(other))
        assert (
            "imported 3 generations and 2 feedback events" in invoke("learning", "import", str(export)).output
        )
        invoke("learning", "export", str(tmp_path / "again.jsonl"))
    assert (tmp_path / "again.jsonl").read_text() == export.read_text()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("nonsense\n")
    result = invoke("learning", "import", str(broken))
    assert result.exit_code == 1 and "nothing was imported" in result.output
