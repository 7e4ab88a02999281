"""The same job on a local Ray (2 CPUs): model affinity, images written by the driver, actors killed
mid-item (by Ray and by SIGKILL) → their items run elsewhere, none lost, none twice in the manifest."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_lib.diffusion import ImageGenerator
from ml_lib.diffusion.batch import BatchEvent, RayOptions
from ml_lib.diffusion.testing.tiny import TinyModelFiles

from .conftest import manifest_records, write_job

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

FAST = {"model": "demo", "steps": 2}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_actors_keep_their_models_and_the_driver_writes_every_image(
    generator: ImageGenerator, tmp_path: Path, tiny_model: TinyModelFiles
) -> None:
    tiny = {"model": str(tiny_model.single_file), "steps": 2}
    job = write_job(
        tmp_path / "job.jsonl",
        {"prompt": "a {red|blue|green} circle", **FAST},
        {"prompt": "noise {1|2|3}", **tiny},
    )
    out = tmp_path / "out"
    report = generator.batch(job, out, ray=RayOptions(actors=2))
    assert (report.done, report.failed, report.workers) == (6, 0, 2)
    done = manifest_records(out, "done")
    runs: dict[object, list[object]] = {}  # each worker's models, in the order it ran them
    for record in done:
        models = runs.setdefault(record["worker"], [])
        if not models or models[-1] != record["model"]:
            models.append(record["model"])
    assert os.getpid() not in runs and len(runs) == 2  # the actors generated, not the driver
    assert all(len(m) == len(set(m)) for m in runs.values())  # no worker went back to a model it left
    assert report.model_loads == sum(len(m) for m in runs.values()) <= 3
    assert len(list(out.glob("*.png"))) == 6
    assert len(generator.history(limit=None)) == 6  # recorded by the driver, once each
    info = generator.info(next(out.glob("*.png")))
    assert info.plan is not None and info.parsed is not None  # metadata written by the driver


def test_items_of_killed_actors_are_retried_elsewhere_once(generator: ImageGenerator, tmp_path: Path) -> None:
    job = write_job(tmp_path / "job.jsonl", {"prompt": "a {red|blue|green} square", **FAST})
    out = tmp_path / "out"
    starts: list[Any] = []

    def on_event(event: BatchEvent) -> None:
        if event.kind != "start":
            return
        starts.append(event.item)
        if len(starts) == 1:
            ray.kill(event.worker)  # Ray's own kill, mid-item
        elif len(starts) == 3:
            os.kill(ray.get(event.worker.pid.remote()), signal.SIGKILL)  # the process dies

    report = generator.batch(job, out, ray=RayOptions(actors=2), on_event=on_event)
    assert (report.done, report.failed) == (3, 0)
    assert len(starts) >= 5  # two items were started twice
    keys = [r["key"] for r in manifest_records(out, "done")]
    assert len(keys) == len(set(keys)) == 3
    assert len(list(out.glob("*.png"))) == 3
