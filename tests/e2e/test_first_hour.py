"""The README, top to bottom, as a new user follows it in their first hour (issue 12).

The README's own commands run with a temporary ML_DIFFUSION_HOME and no model roots: the demo model
where no model is named, the tiny random model where the README writes one. One generation is shared.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("first-hour") / "home"


@pytest.fixture
def run(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(home))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    monkeypatch.delenv("ML_DIFFUSION_OUTPUT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def first_image(home: Path) -> Path:
    """The README's main job, exactly as written, run once (no --out: the image goes to <home>/outputs)."""
    line = next(x for x in _blocks("bash")[0].splitlines() if x.startswith("python3 -m venv"))
    args = shlex.split(line.split("&& ml-diffusion ", 1)[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_DIFFUSION_")}
    exe = Path(sys.executable).with_name("ml-diffusion")
    proc = subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        env={**env, "ML_DIFFUSION_HOME": str(home)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "using the built-in 64x64 demo model" in proc.stderr and "Traceback" not in proc.stderr
    (saved,) = (home / "outputs").glob("*.png")
    assert f"saved {saved}" in proc.stdout
    return saved


def test_two_commands_install_then_test() -> None:
    bash = _blocks("bash")[0]
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]" && ml-diffusion generate' in bash
    assert [x for x in bash.splitlines() if x and not x.startswith("#")][-1] == "pytest"
    assert "resolves to the CUDA build" in README
    assert "`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`" in README
    assert "[`docs/DESIGN.md`](docs/DESIGN.md)" in README and "../shared" not in README
    assert (Path(__file__).parents[2] / "docs" / "DESIGN.md").is_file()


def test_the_main_job_lands_where_the_readme_says(first_image: Path, home: Path, monkeypatch) -> None:
    from platformdirs import user_data_path

    from ml_lib.diffusion.settings import Settings

    assert first_image.parent == home / "outputs"
    with Image.open(first_image) as image:
        assert image.size == (64, 64) and "demo" in image.text["parameters"]
    monkeypatch.delenv("ML_DIFFUSION_HOME")
    monkeypatch.delenv("ML_DIFFUSION_OUTPUT", raising=False)
    default = Settings.from_env().outputs
    assert default == user_data_path("ml-diffusion", appauthor=False) / "outputs"
    if sys.platform.startswith("linux") and "XDG_DATA_HOME" not in os.environ:
        assert default == Path("~/.local/share/ml-diffusion/outputs").expanduser()
    assert "`~/.local/share/ml-diffusion/outputs`" in README
    for knob in ("`--out DIR`", "`ML_DIFFUSION_OUTPUT=DIR`", "`ML_DIFFUSION_HOME=DIR`"):
        assert knob in README


def test_output_settings_move_the_image(run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_DIFFUSION_OUTPUT", str(tmp_path / "env-out"))
    result = run("plan", "a red circle on the left", "--json")
    assert json.loads(result.stdout)["output_dir"] == str(tmp_path / "env-out")
    result = run("plan", "a red circle on the left", "--out", str(tmp_path / "flag-out"), "--json")
    assert json.loads(result.stdout)["output_dir"] == str(tmp_path / "flag-out")


def test_the_python_section_runs(home: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(home / "python"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    (code,) = _blocks("python")
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "step 12/12" in out and "sampler" in out
    assert len(list((home / "python" / "outputs").glob("*.png"))) == 2  # generate, then reproduce


def test_command_line_plan_info_reproduce(run, first_image: Path, tmp_path: Path) -> None:
    plan = run("plan", "a red circle on the left", "--name", "[date]-[seed]-[prompt_words]")
    assert plan.exit_code == 0 and "[date]-[seed]-[prompt_words]" in plan.output
    info = run("info", str(first_image))
    assert info.exit_code == 0 and "a red circle on the left, blue background" in info.output
    assert f"ml-diffusion reproduce {shlex.quote(str(first_image))}" in info.output
    again = run("reproduce", str(first_image), "--out", str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    (copy,) = (tmp_path / "again").glob("*.png")
    with Image.open(first_image) as a, Image.open(copy) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_errors_are_one_line(run, tmp_path: Path) -> None:
    result = run("generate", "x", "--size", "99999x99999", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "use 4096 or less" in result.stderr
    assert not (tmp_path / "o").exists()


def test_models_offline(run, tmp_path: Path) -> None:
    assert run("models", "scan").exit_code == 0  # no roots set: the built-ins
    listing = run("models", "list", "--kind", "checkpoint")
    assert listing.exit_code == 0 and "demo (built-in)" in listing.output
    command = "python -m ml_lib.diffusion.testing.tiny sd1 DIR"
    assert command in README
    folder = tmp_path / "tiny"
    proc = subprocess.run(
        [sys.executable, "-m", "ml_lib.diffusion.testing.tiny", "sd1", str(folder)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (folder / "sd1-tiny.safetensors").is_file() and (folder / "sd1-tiny.config").is_dir()
    plan = run("plan", "a fox", "--model", str(folder / "sd1-tiny.safetensors"), "--json")
    assert plan.exit_code == 0 and json.loads(plan.stdout)["model"]["family"] == "sd1"
    hub = run("plan", "a castle", "--model", "stabilityai/stable-diffusion-xl-base-1.0")
    assert hub.exit_code == 1 and "Hub cannot be reached" in hub.stderr and hub.stderr.count("\n") == 1
