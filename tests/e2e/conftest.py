"""End-to-end fixtures: tiny seeded models and the in-process CLI (tests/conftest.py keeps the network off)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    """Tiny SD1 model as a diffusers folder, an A1111 single file and its ``.config/`` folder."""
    return write_tiny_model("sd1", tmp_path_factory.mktemp("tiny-sd1"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    """A tiny SD1 model per module (modules that change it do not disturb the others)."""
    return write_tiny_model("sd1", tmp_path_factory.mktemp("models"))


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The CLI in-process on a fresh home, with no model roots or output folder from the environment."""
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    monkeypatch.delenv("ML_DIFFUSION_OUTPUT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke
