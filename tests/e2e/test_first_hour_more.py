"""Issue 12, "the first hour", part 2: edited plans, Ctrl-C while loading, warnings, bogus folders, file modes.

Every failure is one line on stderr, a non-zero exit code, no traceback, and nothing left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .first_hour_kit import no_loading, one_line_error, tiny_args


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
    monkeypatch.setattr("ml_lib.diffusion.engine.loading.load_pipeline", no_loading)
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
import pathlib, signal, sys, time
import safetensors.torch as st

# Ctrl-C as in a terminal, even when this test runs in a background job (bash then starts it with SIGINT
# ignored, and Python installs no KeyboardInterrupt handler for an ignored signal)
signal.signal(signal.SIGINT, signal.default_int_handler)

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
        stdout, stderr = proc.communicate(timeout=50)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert elapsed < 40, elapsed  # the load sleeps 60 s: well before it ends, even on a loaded machine
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
