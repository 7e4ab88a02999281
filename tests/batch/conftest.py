"""Batch fixtures: a generator on a fresh home and small jobs on the demo and tiny models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_lib.diffusion import ImageGenerator
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    """A tiny random SD1 model (a second model next to the demo)."""
    return write_tiny_model("sd1", tmp_path_factory.mktemp("batch-models"))


@pytest.fixture
def generator(tmp_path: Path) -> Iterator[ImageGenerator]:
    """An ImageGenerator on a fresh home with no model roots."""
    settings = Settings(home=tmp_path / "home", model_roots=())
    with ImageGenerator(settings) as gen:
        yield gen


def write_job(path: Path, *lines: dict[str, object]) -> Path:
    """A JSONL job file of ``lines``."""
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def manifest_records(out: Path, kind: str) -> list[dict[str, object]]:
    """The records of one kind in ``out``'s manifest."""
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]
