"""A batch in-process on the demo model: manifest, resume, failures that do not stop it, stop and resume."""

from __future__ import annotations

from pathlib import Path

from ml_lib.diffusion import ImageGenerator
from ml_lib.diffusion.batch import BatchEvent
from ml_lib.diffusion.result import CancelToken
from ml_lib.diffusion.testing.tiny import TinyModelFiles

from .conftest import manifest_records, write_job

FAST = {"model": "demo", "steps": 2}


def test_a_job_runs_reports_failures_and_a_rerun_skips_what_is_done(
    generator: ImageGenerator, tmp_path: Path
) -> None:
    job = write_job(
        tmp_path / "job.jsonl",
        {"defaults": FAST},
        {"prompt": "a {red|blue} circle on the left"},
        {"prompt": "a star", "loras": [{"ref": "no-such-lora"}]},
        {"prompt": "a green square", "width": 99999},
        {"prompt": "a ring"},
    )
    out = tmp_path / "out"
    report = generator.batch(job, out, seed_start=7)
    assert (report.total, report.done, report.failed, report.skipped) == (5, 3, 2, 0)
    assert {index for _, index, _ in report.failures} == {2, 3}
    assert any("no-such-lora" in error for *_, error in report.failures)
    done = manifest_records(out, "done")
    assert sorted(r["seeds"][0] for r in done) == [7, 8, 11]  # seed_start + the item's position
    images = sorted(out.glob("*.png"))
    assert len(images) == 3 and {str(p) for r in done for p in r["paths"]} == {str(p) for p in images}
    assert len(manifest_records(out, "item")) == 5
    assert len(generator.history(limit=None)) == 3  # every generation recorded, as by generate

    again = generator.batch(job, out, seed_start=7)
    assert (again.done, again.skipped, again.failed) == (0, 3, 2)  # failed items are tried again
    assert len(list(out.glob("*.png"))) == 3
    assert len(manifest_records(out, "item")) == 5  # the expansion is listed once


def test_stop_ends_after_the_current_step_and_a_rerun_finishes_without_duplicates(
    generator: ImageGenerator, tmp_path: Path
) -> None:
    job = write_job(tmp_path / "job.jsonl", {"prompt": "a {red|green|blue} star", **FAST})
    out = tmp_path / "out"
    stop = CancelToken()
    starts: list[int] = []

    def on_event(event: BatchEvent) -> None:
        if event.kind == "start" and event.item is not None:
            starts.append(event.item.index)
            if len(starts) == 2:  # Ctrl-C while the second item is running
                stop.cancel()

    report = generator.batch(job, out, on_event=on_event, stop=stop)
    assert report.stopped and report.done == 1
    assert len(list(out.glob("*.png"))) == 1
    resumed = generator.batch(job, out)
    assert (resumed.skipped, resumed.done, resumed.stopped) == (1, 2, False)
    keys = [r["key"] for r in manifest_records(out, "done")]
    assert len(keys) == len(set(keys)) == 3
    assert len(list(out.glob("*.png"))) == 3


def test_items_are_grouped_by_model_so_each_loads_once(
    generator: ImageGenerator, tmp_path: Path, tiny_model: TinyModelFiles
) -> None:
    tiny = {"model": str(tiny_model.single_file), "steps": 2}
    job = write_job(
        tmp_path / "job.jsonl",
        {"prompt": "a red circle", **FAST},
        {"prompt": "noise", **tiny},
        {"prompt": "a blue circle", **FAST},
        {"prompt": "more noise", **tiny},
    )
    out = tmp_path / "out"
    report = generator.batch(job, out)
    assert report.done == 4 and report.model_loads == 2
    order = [r["model"] for r in manifest_records(out, "done")]
    assert order[0] == order[1] and order[2] == order[3] and order[0] != order[2]
