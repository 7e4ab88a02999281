"""``ml-diffusion batch``: a summary line, a JSON report, one clear line for a bad job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app

from .conftest import write_job


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return lambda *args: CliRunner().invoke(app, ["batch", *args])


def test_a_bad_job_is_one_line_and_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = tmp_path / "job.jsonl"
    job.write_text('{"prompt": "a", "stpes": 3}\n')
    result = cli(str(job), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: line 1: unknown field(s) stpes"]
    assert not (tmp_path / "out").exists()  # nothing written for a job that does not parse


def test_a_job_prints_its_summary_and_the_json_report(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job = write_job(tmp_path / "job.jsonl", {"prompt": "a red ring", "model": "demo", "steps": 2})
    out = tmp_path / "out"
    result = cli(str(job), "--out", str(out), "--repeat", "2", "--seed-start", "5")
    assert result.exit_code == 0, result.output
    assert "2 done, 0 done before, 0 failed of 2; 1 model load(s) on 1 worker(s)" in result.output
    again = cli(str(job), "--out", str(out), "--repeat", "2", "--seed-start", "5", "--json")
    report = json.loads(again.stdout)
    assert (report["done"], report["skipped"], report["total"]) == (0, 2, 2)


def test_a_driver_killed_mid_run_resumes_without_duplicates(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import manifest_records

    job = write_job(
        tmp_path / "job.jsonl", {"prompt": "a {red|blue|green|pink} circle", "model": "demo", "steps": 4}
    )
    out = tmp_path / "out"
    env = {**os.environ, "ML_DIFFUSION_HOME": str(tmp_path / "home")}
    exe = Path(sys.executable).with_name("ml-diffusion")
    args = [str(exe), "batch", str(job), "--out", str(out), "--json"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "manifest.jsonl").exists() and manifest_records(out, "done"):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # kill -9: no handler, no cleanup
    finally:
        proc.wait(timeout=60)
    first = {r["key"] for r in manifest_records(out, "done")}
    assert 1 <= len(first) < 4
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(resumed.stdout)
    assert (report["skipped"], report["done"]) == (len(first), 4 - len(first))
    keys = [r["key"] for r in manifest_records(out, "done")]
    assert len(keys) == len(set(keys)) == 4
