"""Hostile images, prompts and inputs, driven through ``ml-diffusion`` as a user would (issue 13).

Each case ends in one line on stderr, no traceback, the right exit code (2 for bad input, 1 otherwise),
nothing left behind and bounded time. Subprocesses (the real console script, with a timeout) where a
hang or the real terminal output is the point; typer's CliRunner where a test must watch inside (no
pixels decoded, nothing loaded). Hostile model folders, the database and saves: test_hostile_files.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile, PngImagePlugin
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import TinyModelFiles

from ..unit.test_metadata_hostile import big_png, text_chunk

EXE = Path(sys.executable).with_name("ml-diffusion")
_MB = 1 << 20


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    return tmp_path / "home"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The console script in a child process (the environment, with ML_DIFFUSION_HOME, is inherited)."""
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout, check=False)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def one_error_line(stderr: str, *fragments: str) -> str:
    """The single ``error:`` line of ``stderr``, which must contain each fragment."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def png_with(path: Path, infotext: str, plan_text: str | None = None) -> Path:
    """A small PNG carrying ``infotext`` and (compressed, as we write it) ``plan_text``."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", infotext)
    if plan_text is not None:
        info.add_text("ml_diffusion_plan", plan_text, zip=True)
    Image.new("RGB", (8, 8), "gray").save(path, pnginfo=info)
    return path


@pytest.fixture(scope="module")
def plan_dict(tiny_sd1: TinyModelFiles, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A valid plan for the tiny model, as the CLI prints it (a fresh home of its own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ML_DIFFUSION_HOME", str(tmp_path_factory.mktemp("plan-home")))
        args = ("plan", "a cat", "--model", str(tiny_sd1.single_file), "--size", "64x64", "--steps", "2")
        result = invoke(*args, "--seed", "7", "--sampler", "Euler", "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records (and stops) any attempt to load a pipeline."""
    from ml_lib.diffusion.facade import ImageGenerator

    attempts: list[str] = []

    def refuse(self: ImageGenerator) -> None:
        attempts.append("pipeline pool")
        raise AssertionError("a pipeline was about to load")

    monkeypatch.setattr(ImageGenerator, "_pipelines", refuse)
    return attempts


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# -- reproduce: an embedded plan is untrusted -------------------------------------------------------
def _hostile_plans(plan: dict[str, Any]) -> dict[str, str]:
    model = plan["model"]
    as_json = {
        "100000x100000": {**plan, "width": 100000, "height": 100000},
        "batch 100000": {**plan, "batch_size": 100000},
        "CFG NaN": {**plan, "cfg_scale": float("nan")},
        "pickle path": {**plan, "model": {**model, "reference": "/srv/models/evil.ckpt"}},
        "Hub model": {**plan, "model": {**model, "format": "hub", "reference": "someone/model"}},
    }
    texts = {name: json.dumps(value) for name, value in as_json.items()}
    texts["100000 deep"] = '{"a":' * 100_000 + "1" + "}" * 100_000
    return texts


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("100000x100000", "Plan field width/height: width 100000 is over the limit"),
        ("batch 100000", "Plan field batch_size: 100000 is not a whole number between 1 and"),
        ("CFG NaN", "Plan field cfg_scale: nan is not a finite number"),
        ("pickle path", "'/srv/models/evil.ckpt' is a pickle file, which a plan may not load"),
        ("Hub model", "'someone/model' is a Hugging Face Hub model, which a plan from a file may not"),
        ("100000 deep", "carries no ml-diffusion plan"),
    ],
)
def test_reproduce_refuses_a_hostile_plan_before_loading(
    case: str, message: str, plan_dict: dict[str, Any], home: Path, tmp_path: Path, no_loading: list[str]
) -> None:
    image = png_with(tmp_path / "hostile.png", "a cat\nSteps: 2, Seed: 7", _hostile_plans(plan_dict)[case])
    start = time.perf_counter()
    result = invoke("reproduce", str(image))
    assert time.perf_counter() - start < 10
    assert result.exit_code == 1 and result.stdout == ""
    one_error_line(result.stderr, message)
    assert no_loading == []
    assert files_under(tmp_path) == [image] or files_under(tmp_path) == [image, home / "ml-diffusion.sqlite3"]


def test_reproduce_writes_to_the_output_folder_not_one_the_image_names(
    plan_dict: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    named = tmp_path / "named-by-the-image"
    plan = {**plan_dict, "output_dir": str(named), "name_template": "../../[seed]\u202egnp.exe"}
    image = png_with(tmp_path / "ours.png", "a cat\nSteps: 2, Seed: 7", json.dumps(plan))
    result = invoke("reproduce", str(image))
    assert result.exit_code == 0, result.output
    (saved,) = files_under(home / "outputs")
    assert f"saved {saved} (seed 7)" in result.stdout
    assert saved.parent == home / "outputs" and "\u202e" not in saved.name and not saved.name.startswith(".")
    assert not named.exists() and [p for p in files_under(tmp_path) if home not in p.parents] == [image]


# -- info: metadata read without decoding, capped, printed safely ----------------------------------
@pytest.mark.parametrize("size", [_MB - 4096, 3 * _MB])
def test_info_on_a_megabyte_of_hostile_infotext_is_fast(size: int, home: Path, tmp_path: Path) -> None:
    hostile = "a prompt\n" + "word " * (size // 5)  # a long last line without key: value pairs
    image = tmp_path / "hostile.png"
    image.write_bytes(big_png(64, 64, before=text_chunk("parameters", hostile)))
    start = time.perf_counter()
    proc = cli("info", str(image), "--json")
    assert time.perf_counter() - start < 15  # A1111's quadratic regex: 34 s for 50 KB, never for 100 KB
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    data = json.loads(proc.stdout)
    if size < _MB:
        assert data["infotext"] == hostile
    else:  # over the 1 MiB cap per text chunk: not read, and said so on one line
        assert data["infotext"] is None and len(proc.stderr.strip().splitlines()) <= 1
    assert files_under(tmp_path) == [image]


def test_info_on_a_179_megapixel_png_reads_text_without_decoding(
    home: Path, tmp_path: Path, no_decoding: None
) -> None:
    image = tmp_path / "bomb.png"
    text = "a castle\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 20000x9000"
    image.write_bytes(big_png(20000, 9000, before=text_chunk("parameters", text)))
    assert image.stat().st_size < 100_000
    result = invoke("info", str(image))
    assert result.exit_code == 0, result.output
    assert "a castle" in result.stdout and "20000x9000" in result.stdout and result.stderr == ""


def test_info_prints_no_terminal_escape_sequences(home: Path, tmp_path: Path) -> None:
    hostile = (
        "a \x1b]0;owned\x07red \x1b[31mcat\x1b[0m\u202egnp.exe\x9b2J\n"
        "Steps: 2, Sampler: Euler\x1b[2J, Seed: 1, Note\x1b[8m: \x1b]8;;http://x\x1b\\link"
    )
    image = png_with(tmp_path / "escapes.png", hostile)
    shown = cli("info", str(image))
    as_json = cli("info", str(image), "--json")
    for proc in (shown, as_json):
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in proc.stdout, (proc.args, bad)
    assert "red [31mcat[0mgnp.exe2J" in shown.stdout and "Euler[2J" in shown.stdout  # the rest is shown
    assert json.loads(as_json.stdout)["infotext"] == hostile  # --json keeps it all, escaped


# -- prompts with degenerate numbers ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "fragments"),
    [
        ("a cat <lora:x:1e308>", ("<lora:x:1e308>", "te weight 1e308 must be a number within")),
        ("(" * 10_000 + "a cat" + ")" * 10_000, ("nests brackets 33 deep", "at most 32")),
        ("a cat <lora:x:nan>", ("Cannot read the weights of <lora:x:nan> in the prompt",)),
        ("a cat <lora:x:inf:1>", ("<lora:x:inf:1>",)),
    ],
)
def test_degenerate_prompt_numbers_are_one_line(
    prompt: str, fragments: tuple[str, ...], tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    result = invoke("generate", prompt, "--model", str(tiny_sd1.single_file), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and result.stdout == ""
    one_error_line(result.stderr, *fragments)
    assert not (tmp_path / "out").exists() and files_under(home / "inputs") == []


# -- init images ------------------------------------------------------------------------------------
def test_a_9000_square_init_image_is_refused_before_decoding(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path, no_decoding: None
) -> None:
    huge = tmp_path / "huge.png"
    huge.write_bytes(big_png(9000, 9000))
    out = tmp_path / "out"
    result = invoke(
        "generate",
        "a cat",
        "--model",
        str(tiny_sd1.single_file),
        "--init-image",
        str(huge),
        "--out",
        str(out),
    )
    assert result.exit_code == 2
    one_error_line(result.stderr, "9000x9000 = 81,000,000 pixels, over the limit")
    assert not out.exists() and files_under(home / "inputs") == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_init_image_is_refused_at_once(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    proc = cli(
        "generate", "a cat", "--model", str(tiny_sd1.single_file), "--init-image", str(fifo), timeout=60
    )
    assert proc.returncode == 2
    one_error_line(proc.stderr, "is not a regular file (a FIFO")
    assert files_under(home / "inputs") == [] and files_under(home / "outputs") == []


# -- file names from prompts and templates -----------------------------------------------------------
def test_names_cannot_traverse_or_hide_their_extension(
    tiny_sd1: TinyModelFiles, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "deep" / "out"
    result = invoke(
        "generate", "x\u202egnp.exe a cat", "--model", str(tiny_sd1.single_file), "--size", "64x64",
        "--steps", "2", "--seed", "3", "--name", "../../[prompt_words]-[seed]", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (saved,) = files_under(tmp_path / "deep")
    assert saved.parent == out and saved.suffix == ".png"
    assert "\u202e" not in saved.name and "/" not in saved.stem and not saved.name.startswith(".")
    assert saved.name == "x gnp exe a cat-3.png"
    assert [p for p in files_under(tmp_path) if home not in p.parents] == [saved]
