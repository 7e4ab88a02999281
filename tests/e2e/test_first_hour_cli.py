"""Issue 12, "the first hour": each thing a new user met, through the CLI as they run it.

Every failure is one line on stderr, a non-zero exit code, no traceback, and nothing left behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from ml_lib.diffusion.cli import app
from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    return write_tiny_model("sd1", tmp_path_factory.mktemp("models"))


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ML_DIFFUSION_MODELS", raising=False)
    monkeypatch.delenv("ML_DIFFUSION_OUTPUT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


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


def test_generate_help_shows_the_name_example(run) -> None:
    result = run("generate", "--help")
    assert result.exit_code == 0
    assert "[date]-[seed]-[prompt_words]" in result.output


def test_info_quotes_the_reproduce_command_of_a_name_with_spaces(run, tiny, tmp_path: Path) -> None:
    import shlex

    out = tmp_path / "my pictures"
    assert run(*tiny_args(tiny, out, "--name", "my fox [seed]", "--seed", "3")).exit_code == 0
    (saved,) = out.iterdir()
    assert saved.name == "my fox 3.png"
    result = run("info", str(saved))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "ml-diffusion reproduce" in x)
    command = line.split("`")[1]
    assert shlex.split(command) == ["ml-diffusion", "reproduce", str(saved)]


@pytest.mark.parametrize(
    ("size", "suggested"),
    [("99999x99999", "use 4096 or less"), ("4095x64", "use 4088 or 4096"), ("4100x64", "use 4096 or less")],
)
def test_size_suggestions_respect_the_limits(run, tiny, tmp_path: Path, size: str, suggested: str) -> None:
    result = run(*tiny_args(tiny, tmp_path / "o"), "--size", size)
    line = one_line_error(result, 2, suggested)
    assert all(int(n) <= 4096 for n in re.findall(r"\d+", line.split("; use ")[1]))
    assert not (tmp_path / "o").exists()


def test_missing_ip_adapter_and_controlnet_folders_say_no_such_folder(
    run, tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    face = tmp_path / "face.png"
    Image.new("RGB", (64, 64), "white").save(face)
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)  # models/ exists, models/ip-adapter does not: a path, not a Hub id
    for missing in (str(tmp_path / "ip-adapter"), "models/ip-adapter"):
        result = run(*tiny_args(tiny, tmp_path / "o"), "--ip-adapter", f"{missing}:{face}:0.6")
        line = one_line_error(result, 1, f"No IP-Adapter at {missing!r}: no such folder")
        assert "cannot be reached" not in line
    for missing in ("./cn-canny", "models/cn-canny"):
        result = run(*tiny_args(tiny, tmp_path / "o"), "--controlnet", f"{missing}:{face}:0.9")
        line = one_line_error(result, 1, f"No ControlNet at {missing!r}: no such file or folder")
        assert "cannot be reached" not in line
    assert not (tmp_path / "o").exists()


def test_demo_notice_names_non_ascii_words(run, tmp_path: Path) -> None:
    result = run(
        "generate", "a red circle on the left, café crème, 東京", "--seed", "1", "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.rstrip().endswith("backgrounds, not: café, crème, 東京.")
    assert len(list((tmp_path / "o").iterdir())) == 1


@pytest.mark.parametrize("form", ["single_file", "diffusers_dir"])
def test_clip_skip_over_the_text_encoder_layers_is_refused_in_planning(
    run, tiny, tmp_path: Path, form
) -> None:
    model = str(getattr(tiny, form))  # the tiny SD1 text encoder has 3 layers
    for verb in ("plan", "generate"):
        result = run(verb, "a fox", "--model", model, "--clip-skip", "4", "--out", str(tmp_path / "o"))
        one_line_error(result, 2, "clip skip 4 is more than", "(3)", "use --clip-skip 3 or less")
    assert run("plan", "a fox", "--model", model, "--clip-skip", "3").exit_code == 0
    demo = run("plan", "a red circle", "--clip-skip", "4")  # the demo's encoder has 3 layers too
    one_line_error(demo, 2, "use --clip-skip 3 or less")
    assert not (tmp_path / "o").exists()


def _cpu_oom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"
    )


def _memory_error(*_args: object, **_kwargs: object) -> None:
    raise MemoryError


@pytest.mark.parametrize(
    ("target", "failure"),
    [
        ("ml_lib.diffusion.engine.executor._encode", _cpu_oom),
        ("diffusers.UNet2DConditionModel.forward", _cpu_oom),  # denoising
        ("diffusers.UNet2DConditionModel.forward", _memory_error),
        ("ml_lib.diffusion.engine.executor._decode", _memory_error),
        ("ml_lib.diffusion.engine.executor._decode", _cpu_oom),
    ],
)
def test_cpu_out_of_memory_is_one_line(run, tiny, tmp_path: Path, monkeypatch, target: str, failure) -> None:
    monkeypatch.setattr(target, failure)
    result = run(*tiny_args(tiny, tmp_path / "o", "--size", "64x72", "--batch", "2"))
    one_line_error(result, 1, "Out of memory at 64x72, batch 2: use a smaller size or batch")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_out_of_memory_while_loading_is_one_line(run, tiny, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("diffusers.StableDiffusionPipeline.from_single_file", _cpu_oom)
    result = run(*tiny_args(tiny, tmp_path / "o"))
    one_line_error(result, 1, "Out of memory while loading")


def test_other_runtime_errors_are_not_called_out_of_memory(run, tiny, tmp_path: Path, monkeypatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr("ml_lib.diffusion.engine.executor._decode", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run(*tiny_args(tiny, tmp_path / "o"))


def _no_loading(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a model was loaded although the output folder cannot take files")


def _unwritable_outs(tmp_path: Path) -> list[Path]:
    import os

    a_file = tmp_path / "taken.png"
    a_file.write_bytes(b"x")
    outs = [a_file, a_file / "sub", Path("/proc"), Path("/proc/ml-diffusion-out"), Path("/sys/kernel")]
    if os.geteuid() != 0:  # root writes into read-only folders; /sys stands in for it then
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        outs.append(locked)
    return outs


def test_unwritable_out_fails_before_loading_anything(run, tiny, tmp_path: Path, monkeypatch) -> None:
    import time

    monkeypatch.setattr("ml_lib.diffusion.engine.pool.load_pipeline", _no_loading)
    for out in _unwritable_outs(tmp_path):
        t0 = time.perf_counter()
        result = run(*tiny_args(tiny, out))
        one_line_error(result, 1, f"Cannot save images in {out}", "--out")
        assert time.perf_counter() - t0 < 5, out
    assert {p.name for p in tmp_path.iterdir()} - {"home", "locked"} == {"taken.png"}
    assert (tmp_path / "taken.png").read_bytes() == b"x"


def test_unwritable_out_of_reproduce_fails_before_loading(run, tiny, tmp_path: Path, monkeypatch) -> None:
    assert run(*tiny_args(tiny, tmp_path / "o", "--seed", "4")).exit_code == 0
    (saved,) = (tmp_path / "o").iterdir()
    monkeypatch.setattr("ml_lib.diffusion.engine.pool.load_pipeline", _no_loading)
    result = run("reproduce", str(saved), "--out", str(saved))
    one_line_error(result, 1, f"Cannot save images in {saved}")
    assert list((tmp_path / "o").iterdir()) == [saved]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(args: list[str], env: dict[str, str], timeout: float = 120):
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("ml-diffusion")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=timeout
    )


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "closed endpoint"])
def test_offline_hub_id_fails_fast_and_quietly(tmp_path: Path, offline: str) -> None:
    import time

    env = {"ML_DIFFUSION_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf")}
    if offline == "HF_HUB_OFFLINE":
        env["HF_HUB_OFFLINE"] = "1"
    else:  # online mode, but nothing answers at the endpoint
        env.update(
            HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}"
        )
    t0 = time.perf_counter()
    proc = _cli(["generate", "a fox", "--model", "someone/some-model", "--out", str(tmp_path / "o")], env)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 1, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert lines == [
        "error: 'someone/some-model' is not in the local Hugging Face cache and the Hub cannot be reached. "
        "Download it where there is a network (`hf download someone/some-model`) or give a local path "
        "(if you meant a local path: it does not exist)."
    ], proc.stderr
    assert elapsed < 15, elapsed  # was 25 s of retries; starting python takes a few seconds here
    assert not (tmp_path / "o").exists()


def _with_plan(source: Path, target: Path, edit) -> Path:
    """A copy of ``source`` whose embedded plan was edited by ``edit(dict)`` (the infotext is kept)."""
    import json

    from PIL import Image, PngImagePlugin

    from ml_lib.diffusion.output.metadata import PLAN_CHUNK

    with Image.open(source) as image:
        image.load()
        plan = json.loads(image.text[PLAN_CHUNK])
        edit(plan)
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", image.text["parameters"])
        info.add_text(PLAN_CHUNK, json.dumps(plan), zip=True)
        image.save(target, pnginfo=info)
    return target


@pytest.mark.parametrize(
    ("edit", "code", "message"),
    [
        (
            lambda p: p.update(width=99999, height=99999),
            1,
            "Plan field width/height: width 99999 is over the limit",
        ),
        (
            lambda p: p.update(sampler="Warp Drive"),
            1,
            "Plan field sampler/schedule: Unknown sampler 'Warp Drive'",
        ),
        (
            lambda p: p["model"].update(reference="/models/evil.ckpt"),
            1,
            "'/models/evil.ckpt' is a pickle file",
        ),
        (
            lambda p: p.update(steps=10**6),
            1,
            "Plan field steps: 1000000 is not a whole number between 1 and 500",
        ),
    ],
)
def test_reproduce_of_an_edited_plan_is_one_readable_line(
    run, tiny, tmp_path: Path, monkeypatch, edit, code: int, message: str
) -> None:
    assert run(*tiny_args(tiny, tmp_path / "o", "--seed", "9")).exit_code == 0
    (saved,) = (tmp_path / "o").iterdir()
    edited = _with_plan(saved, tmp_path / "edited image.png", edit)
    monkeypatch.setattr("ml_lib.diffusion.engine.pool.load_pipeline", _no_loading)
    result = run("reproduce", str(edited), "--out", str(tmp_path / "again"))
    line = one_line_error(result, code, message)
    assert line.startswith(f"error: {edited}: the plan inside it cannot be reproduced. Plan field "), line
    assert not (tmp_path / "again").exists()


def test_reproduce_with_an_edited_input_image_hash(run, tiny, tmp_path: Path) -> None:
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), "orange").save(photo)
    args = tiny_args(tiny, tmp_path / "o", "--seed", "9", "--init-image", str(photo), "--strength", "0.5")
    assert run(*args).exit_code == 0
    (saved,) = (tmp_path / "o").iterdir()
    edited = _with_plan(saved, tmp_path / "edited.png", lambda p: p["init"]["image"].update(sha256="0" * 64))
    result = run("reproduce", str(edited), "--out", str(tmp_path / "again"))
    one_line_error(
        result, 2, "The stored input image", "has changed", "not 000000000000…", "restore the original"
    )
    assert not any((tmp_path / "again").iterdir())


_SLOW_DISK = """
import pathlib, sys, time
import safetensors.torch as st

real, marker = st.load_file, pathlib.Path(sys.argv[1])


def slow_load_file(*args, **kwargs):  # a slow disk: one weights file takes a minute to read
    marker.touch()
    time.sleep(60)
    return real(*args, **kwargs)


st.load_file = slow_load_file
from ml_lib.diffusion.cli import app

sys.argv = ["ml-diffusion", *sys.argv[2:]]
app()
"""


def test_ctrl_c_while_the_model_loads_stops_at_once(tiny, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    marker, out = tmp_path / "loading", tmp_path / "o"
    args = ["generate", "a fox", "--model", str(tiny.diffusers_dir), "--size", "64x64", "--steps", "2"]
    env = {**os.environ, "ML_DIFFUSION_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_DISK, str(marker), *args, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert elapsed < 5, elapsed
    assert "Traceback" not in stderr and stdout == ""
    assert [x for x in stderr.splitlines() if x.strip()][-1].startswith("cancelled;")
    assert not out.exists() or not any(out.iterdir())


_PYTHON_USER = """
import warnings
warnings.simplefilter("always")
from ml_lib.diffusion import ImageGenerator

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with ImageGenerator() as gen:
        gen.generate("a red circle", sampler="DPM++ SDE", steps=4, seed=1, save=False)
for w in caught:
    if w.category is not DeprecationWarning:  # numpy 2 notes inside diffusers' schedulers
        print("WARNING", w.category.__name__, w.message)
"""


def test_python_users_see_no_torchsde_or_torchvision_noise(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ML_DIFFUSION_HOME": str(tmp_path / "home")}
    env.pop("ML_DIFFUSION_MODELS", None)
    proc = subprocess.run(
        [sys.executable, "-c", _PYTHON_USER], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "requires torchvision" not in proc.stderr and "Should have" not in proc.stderr, proc.stderr
    assert "WARNING" not in proc.stdout, proc.stdout


def test_only_the_known_notices_are_dropped() -> None:
    import logging
    import warnings

    from ml_lib.diffusion.engine._quiet import no_sde_rounding_warnings, no_torchvision_fallback_notice

    logger = logging.getLogger("transformers.utils.import_utils")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # other tests may have turned transformers' verbosity down
    try:
        with no_torchvision_fallback_notice():
            logger.warning(
                "`CLIPImageProcessor` requires torchvision (not installed); falling back to `CLIPImageProcessorPil` …"
            )
            logger.warning("`CLIPTextModel` requires the sentencepiece library")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records == ["`CLIPTextModel` requires the sentencepiece library"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with no_sde_rounding_warnings():
            warnings.warn(
                "Should have ta>=t0 but got ta=0.0291675366461277 and t0=0.029168.", UserWarning, stacklevel=1
            )
            warnings.warn(
                "Should have tb<=t1 but got tb=14.6146 and t1=14.614642.", UserWarning, stacklevel=1
            )
            warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real problem"]


def test_a_bogus_model_index_folder_is_listed_broken(run, tiny, tmp_path: Path) -> None:
    import json
    import shutil

    root = tmp_path / "models"
    bogus = root / "bogus"
    (bogus / "unet").mkdir(parents=True)
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}  # fmt: skip
    (bogus / "model_index.json").write_text(json.dumps(index))
    (bogus / "unet" / "config.json").write_text("{}")
    (bogus / "unet" / "notes.safetensors").write_bytes(b"")  # a weights-looking file, the vae is missing
    shutil.copytree(tiny.diffusers_dir, root / "real")
    assert run("models", "scan", "--root", str(root)).exit_code == 0
    rows = {Path(r["path"]).name: r for r in json.loads(run("models", "list", "--json").output)}
    assert rows["real"]["status"] == "ok"
    assert rows["bogus"]["status"] == "broken"
    assert "'vae' component" in rows["bogus"]["info"]["reason"]
    assert rows["bogus"]["info"]["reason"].endswith("download it again.")


def test_models_convert_writes_files_with_the_umask_mode(run, tmp_path: Path) -> None:
    import os

    import torch

    torch.save({"state_dict": {"w": torch.ones(2, 3)}}, tmp_path / "old.ckpt")
    old = os.umask(0o022)
    try:
        result = run("models", "convert", str(tmp_path / "old.ckpt"), "--allow-pickle")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "old.safetensors").stat().st_mode & 0o777 == 0o644
