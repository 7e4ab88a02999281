"""A damaged database in the home folder does not stop a user: it is moved aside and work goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import write_tiny_model


def test_generate_with_a_model_path_on_a_garbage_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "ml-diffusion.sqlite3").write_bytes(b"not a database at all " * 200)
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(home))
    tiny = write_tiny_model("sd1", tmp_path / "models")
    args = ["generate", "x", "--model", str(tiny.single_file), "--size", "64x64", "--steps", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.png"))) == 1
    assert len(list(home.glob("ml-diffusion.sqlite3.damaged-*"))) == 1
