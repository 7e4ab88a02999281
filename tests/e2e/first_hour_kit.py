"""Shared by the "first hour" CLI tests (fixtures ``tiny`` and ``run`` are in conftest.py): arguments, the
one-line error check, a subprocess CLI, a closed port."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result

from ml_lib.diffusion.testing.tiny import TinyModelFiles

__all__ = ["cli", "closed_port", "no_loading", "one_line_error", "tiny_args"]


def tiny_args(tiny: TinyModelFiles, out: Path, *extra: str) -> list[str]:
    return ["generate", "a fox", "--model", str(tiny.single_file), "--size", "64x64", "--steps", "2",
            "--out", str(out), *extra]  # fmt: skip


def one_line_error(result: Result, code: int, *needles: str) -> str:
    """The error line of a failed command: exactly one line on stderr, the exit code, no traceback."""
    assert result.exit_code == code, result.output
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(args: list[str], env: dict[str, str], timeout: float = 120):
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("ml-diffusion")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout
    )


def no_loading(*_args: object, **_kwargs: object) -> None:
    """A stand-in for the model loader: the test fails if anything loads."""
    raise AssertionError("a model was loaded")
