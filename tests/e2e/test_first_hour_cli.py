"""Issue 12, "the first hour": each thing a new user met, through the CLI as they run it (part 1: help,
messages, planning checks, out-of-memory, the output folder, offline Hub ids).

Every failure is one line on stderr, a non-zero exit code, no traceback, and nothing left behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .first_hour_kit import cli, closed_port, no_loading, one_line_error, tiny_args


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
    result = run(*tiny_args(tiny, tmp_path / "o"))  # a bug: one line naming it, no traceback
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert line.startswith("internal error: RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    assert "--debug" in line and "out of memory" not in line.lower()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # the traceback with --debug
        run("--debug", *tiny_args(tiny, tmp_path / "o"))


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

    monkeypatch.setattr("ml_lib.diffusion.engine.loading.load_pipeline", no_loading)
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
    monkeypatch.setattr("ml_lib.diffusion.engine.loading.load_pipeline", no_loading)
    result = run("reproduce", str(saved), "--out", str(saved))
    one_line_error(result, 1, f"Cannot save images in {saved}")
    assert list((tmp_path / "o").iterdir()) == [saved]


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "closed endpoint"])
def test_offline_hub_id_fails_fast_and_quietly(tmp_path: Path, offline: str) -> None:
    import time

    env = {"ML_DIFFUSION_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf")}
    if offline == "HF_HUB_OFFLINE":
        env["HF_HUB_OFFLINE"] = "1"
    else:  # online mode, but nothing answers at the endpoint
        env.update(
            HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}"
        )
    t0 = time.perf_counter()
    proc = cli(["generate", "a fox", "--model", "someone/some-model", "--out", str(tmp_path / "o")], env)
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
