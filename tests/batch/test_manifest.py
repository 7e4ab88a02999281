"""The manifest: durable appends, a cut-short line survived, one writer, the last record of a key wins."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from ml_lib.diffusion.batch.manifest import Manifest, ManifestBusyError, read_state
from ml_lib.diffusion.batch.ray_run import pick_group


def test_state_folds_records_and_done_wins_over_failed(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    with Manifest(path) as m:
        m.write({"kind": "item", "key": "a"})
        m.write({"kind": "item", "key": "b"})
        m.write({"kind": "failed", "key": "a", "error": "x"})
        m.write({"kind": "done", "key": "a"})
        m.write({"kind": "failed", "key": "b", "error": "y"})
    state = read_state(path)
    assert state.listed == {"a", "b"}
    assert set(state.done) == {"a"} and set(state.failed) == {"b"}


def test_a_line_cut_by_a_kill_is_skipped_and_sealed_off(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"kind":"done","key":"a"}\n{"kind":"done","ke')  # killed mid-write
    assert set(read_state(path).done) == {"a"}
    with Manifest(path) as m:
        m.write({"kind": "done", "key": "b"})
    state = read_state(path)
    assert set(state.done) == {"a", "b"} and state.skipped_lines == 1


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    with Manifest(path), pytest.raises(ManifestBusyError, match="another batch"), Manifest(path):
        pass
    with Manifest(path) as m:  # released
        m.write({"kind": "item", "key": "a"})


def test_affinity_keeps_an_actor_on_its_model_and_spreads_new_models() -> None:
    a, b = ("model-a", ()), ("model-b", ())
    queues = {a: deque([1, 2]), b: deque([3, 4, 5])}
    assert pick_group(a, queues, held_elsewhere={b}) == a  # its own model first
    assert pick_group(None, queues, held_elsewhere={b}) == a  # a model nobody holds
    assert pick_group(None, queues, held_elsewhere=set()) == b  # else the largest group
    queues[a].clear()
    assert pick_group(a, queues, held_elsewhere={b}) == b  # nothing left of its own: help out
    queues[b].popleft()
    queues[b].popleft()
    assert pick_group(a, queues, held_elsewhere={b}) is None  # not for the last item: a load costs
    assert pick_group(None, queues, held_elsewhere=set()) == b
    queues[b].clear()
    assert pick_group(a, queues, held_elsewhere=set()) is None
