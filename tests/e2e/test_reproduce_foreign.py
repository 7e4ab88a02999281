"""`info` and `reproduce --model` on images of other tools, end to end on a tiny model; and a ComfyUI-only
copy of our own image (graph chunks alone) regenerating with the same settings."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ml_lib.diffusion.output.metadata import read_metadata
from ml_lib.diffusion.testing.tiny import TinyModelFiles

A1111 = (
    "a lighthouse on a cliff\nNegative prompt: fog\n"
    "Steps: 3, Sampler: Euler a, Schedule type: Automatic, CFG scale: 5.5, Seed: 77, Size: 64x64, Clip skip: 2, "
    "Model hash: 0123456789, Model: someone_elses_model, Hires upscale: 2, Hires steps: 4, "
    "Denoising strength: 0.5, ENSD: 31337, Version: v1.10.1"
)


def write_png(path: Path, chunks: dict[str, str]) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (64, 64), (90, 90, 200)).save(path, format="PNG", pnginfo=info)
    return path


def test_info_lists_what_maps_and_what_does_not(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = write_png(tmp_path / "theirs.png", {"parameters": A1111})
    shown = run("info", str(image))
    assert shown.exit_code == 0, shown.output
    assert "Written by A1111" in shown.output and "Cannot map yet" in shown.output
    assert "ENSD = 31337: eta noise seed delta is not supported" in shown.output
    as_json = json.loads(run("info", str(image), "--json").output)
    assert as_json["foreign"]["mapped"]["Seed"] == "77"
    assert as_json["foreign"]["mapped"]["Hires scale"] == "2.0"  # the hires fix is honoured
    assert {u["key"] for u in as_json["foreign"]["unmapped"]} == {"ENSD"}


def test_reproduce_an_a1111_image_with_every_supported_field(
    run, tiny_sd1: TinyModelFiles, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    image = write_png(tmp_path / "theirs.png", {"parameters": A1111})
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        result = run("reproduce", str(image), "--model", str(tiny_sd1.single_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert any("ENSD" in r.getMessage() for r in caplog.records)
    assert not any("Hires" in r.getMessage() for r in caplog.records)
    (made,) = out.glob("*.png")
    plan = read_metadata(made).plan
    assert plan is not None
    assert (plan.prompt, plan.negative_prompt, plan.seed, plan.steps, plan.cfg_scale) == (
        "a lighthouse on a cliff",
        "fog",
        77,
        3,
        5.5,
    )
    assert (plan.sampler, plan.schedule, plan.width, plan.height, plan.clip_skip) == (
        "Euler a",
        "Uniform",
        64,
        64,
        2,
    )
    assert Path(plan.model.reference) == tiny_sd1.single_file
    assert plan.hires is not None  # A1111's hires fix: x2, 4 second-pass steps at strength 0.5
    assert (plan.hires.scale, plan.hires.steps, plan.hires.denoise) == (2.0, 4, 0.5)
    assert Image.open(made).size == (128, 128)


def test_a_comfyui_copy_of_our_image_regenerates_the_same_settings(
    run, tiny_sd1: TinyModelFiles, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    first = run(
        "generate",
        "a red boat (at sea:1.2)",
        "--negative",
        "blurry",
        "--model",
        str(tiny_sd1.single_file),
        "--size",
        "64x64",
        "--steps",
        "2",
        "--seed",
        "5",
        "--sampler",
        "DPM++ 2M",
        "--schedule",
        "Karras",
        "--cfg",
        "6",
        "--out",
        str(tmp_path / "ours"),
    )
    assert first.exit_code == 0, first.output
    (ours,) = (tmp_path / "ours").glob("*.png")
    original = Image.open(ours)
    graph = json.loads(original.info["prompt"])
    assert {n["class_type"] for n in graph.values()} >= {"CheckpointLoaderSimple", "KSampler", "SaveImage"}
    comfy_only = write_png(
        tmp_path / "comfy.png", {"prompt": original.info["prompt"], "workflow": original.info["workflow"]}
    )
    again = run(
        "reproduce", str(comfy_only), "--model", str(tiny_sd1.single_file), "--out", str(tmp_path / "again")
    )
    assert again.exit_code == 0, again.output
    (made,) = (tmp_path / "again").glob("*.png")
    before, after = read_metadata(ours).plan, read_metadata(made).plan
    assert before is not None and after is not None
    fields = (
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "cfg_scale",
        "sampler",
        "schedule",
        "width",
        "height",
    )
    assert {f: getattr(after, f) for f in fields} == {f: getattr(before, f) for f in fields}
    assert list(io.BytesIO(made.read_bytes()).getvalue()[:8]) == list(b"\x89PNG\r\n\x1a\n")


def test_reproduce_without_a_model_says_to_give_one(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = write_png(
        tmp_path / "noname.png", {"parameters": "a cat\nSteps: 3, Seed: 1, Size: 64x64, CFG scale: 7"}
    )
    result = run("reproduce", str(image), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and "--model" in result.output


def test_a_model_name_not_in_the_catalog_asks_for_model(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = write_png(tmp_path / "named.png", {"parameters": A1111})
    result = run("reproduce", str(image), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and "someone_elses_model" in result.output and "--model" in result.output
    assert "Traceback" not in result.output
