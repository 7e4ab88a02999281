"""Job files: wildcards, grids, repeats, seeds, stable keys and one clear error per bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_lib.diffusion.batch import JobError, load_job, parse_job
from ml_lib.diffusion.batch.jobs import expand_wildcards
from ml_lib.diffusion.request import LoraRequest


def _job(*lines: object) -> str:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)


def test_wildcards_expand_every_combination_in_order() -> None:
    assert expand_wildcards("a {red|blue} {circle|star}") == [
        "a red circle",
        "a red star",
        "a blue circle",
        "a blue star",
    ]
    assert expand_wildcards("{a {big|small}|no} cat") == ["a big cat", "a small cat", "no cat"]
    assert expand_wildcards(r"literal \{x|y\} braces") == ["literal {x|y} braces"]
    assert expand_wildcards("(word:1.2) [from:to:0.5]") == ["(word:1.2) [from:to:0.5]"]


def test_grid_axes_multiply_and_defaults_apply_to_later_lines() -> None:
    items = parse_job(
        _job(
            {"defaults": {"model": "demo", "steps": 4}},
            {"prompt": "a {red|blue} circle", "cfg_scale": [3, 5, 7]},
            {"prompt": "a star", "steps": 8, "loras": [{"ref": "x", "weight": 0.5}]},
        )
    )
    assert len(items) == 2 * 3 + 1
    assert [(i.request.prompt, i.request.cfg_scale) for i in items[:3]] == [
        ("a red circle", 3.0),
        ("a red circle", 5.0),
        ("a red circle", 7.0),
    ]
    assert {i.request.model for i in items} == {"demo"}
    assert items[-1].request.steps == 8 and items[0].request.steps == 4
    assert items[-1].request.loras == (LoraRequest("x", 0.5),)  # a list field is not a grid axis
    assert [i.index for i in items] == list(range(7))
    assert items[-1].line == 3


def test_seeds_follow_seed_start_and_repeat_advances_an_explicit_seed() -> None:
    items = parse_job(_job({"prompt": "a"}, {"prompt": "b", "seed": 100}), repeat=2, seed_start=10)
    assert [i.request.seed for i in items] == [10, 11, 100, 101]
    assert [i.request.seed for i in parse_job(_job({"prompt": "a"}))] == [None]


def test_keys_are_stable_across_runs_and_distinct_per_item() -> None:
    text = _job({"prompt": "a {x|y}"}, {"prompt": "a {x|y}"})
    first, second = parse_job(text, repeat=2), parse_job(text, repeat=2)
    assert [i.key for i in first] == [i.key for i in second]
    assert len({i.key for i in first}) == 8  # same text on two lines, repeats: still one key each
    assert parse_job(text, seed_start=1)[0].key != parse_job(text, seed_start=2)[0].key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt": "a"}\n{"prompt": ', "line 2: not JSON"),
        ('["a"]', "line 1: each line must be a JSON object"),
        ('{"prompt": "a", "stpes": 3}', "line 1: unknown field(s) stpes"),
        ('{"prompt": "a", "steps": "many"}', "line 1:"),
        ('{"prompt": "a", "cfg_scale": []}', "empty list"),
        ('{"defaults": 3}', "defaults must be a JSON object"),
    ],
)
def test_bad_lines_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(JobError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_job(text)


def test_an_expansion_past_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ml_lib.diffusion.batch.jobs.MAX_ITEMS", 5)
    with pytest.raises(JobError, match="more than 5 items"):
        parse_job(_job({"prompt": "{a|b|c}", "steps": [1, 2]}))


def test_load_job_reports_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="cannot read the job file"):
        load_job(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(JobError, match="holds no request"):
        load_job(empty)


def test_the_manifest_lists_the_expanded_request_without_defaults() -> None:
    (item,) = parse_job(_job({"prompt": "a {red} circle", "steps": 4}))
    assert item.request_json() == {"prompt": "a red circle", "steps": 4}
