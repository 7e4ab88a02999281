"""Hostile foreign metadata: a malformed graph or JSON never crashes info/reproduce; it is one typed line."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from ml_lib.diffusion.errors import ForeignMetadataError, MetadataError
from ml_lib.diffusion.output.foreign import ForeignMetadata, read_foreign
from ml_lib.diffusion.output.foreign.comfy import MAX_NODES, read_comfy_prompt, read_comfy_workflow
from ml_lib.diffusion.output.metadata import read_metadata

from .test_foreign_invoke_fooocus import FOOOCUS, INVOKE_4
from .test_foreign_metadata import comfy_api_graph


def png(key: str, value: str) -> io.BytesIO:
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG", pnginfo=info)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("key", ["prompt", "workflow", "invokeai_metadata", "sd-metadata"])
@pytest.mark.parametrize(
    "text", ['{"3": {"class_type": ', "{" + "[" * 100_000, '{"a": NaN, "b": [1, 2,]}', "{\u0000}"]
)
def test_malformed_json_is_one_line_not_a_crash(key: str, text: str) -> None:
    meta = read_metadata(png(key, text))
    assert meta.foreign is None and meta.foreign_error is not None
    assert "\n" not in meta.foreign_error and len(meta.foreign_error) < 200


@pytest.mark.parametrize(
    "graph",
    [
        [],
        {"1": []},
        {"1": {"inputs": {}}},
        {"1": {"class_type": "KSampler", "inputs": []}},
        {"1": {"class_type": 7, "inputs": {}}},
    ],
)
def test_malformed_graph_shapes_are_typed_errors(graph: Any) -> None:
    with pytest.raises(ForeignMetadataError):
        read_comfy_prompt(graph)


def test_too_many_nodes_is_refused() -> None:
    graph = {str(i): {"class_type": "Note", "inputs": {}} for i in range(MAX_NODES + 1)}
    with pytest.raises(ForeignMetadataError, match="more than"):
        read_comfy_prompt(graph)
    with pytest.raises(ForeignMetadataError, match="more than"):
        read_comfy_workflow({"nodes": [{}] * (MAX_NODES + 1)})


def test_cycles_dangling_links_and_wrong_types_degrade_to_unmapped() -> None:
    graph = {
        "1": {
            "class_type": "LoraLoader",
            "inputs": {"model": ["1", 0], "clip": ["9", 1], "lora_name": 5, "strength_model": "x"},
        },
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": ["2", 0], "clip": ["2", 0]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": ["4", 0],
                "steps": [1],
                "cfg": {},
                "sampler_name": "nonsense",
                "scheduler": None,
                "model": ["1", 0],
                "positive": ["2", 0],
                "negative": ["77", 0],
                "latent_image": ["99", 0],
            },
        },
        "4": {"class_type": "PrimitiveNode", "inputs": {"value": ["4", 0]}},
    }
    meta = read_comfy_prompt(graph)
    assert (meta.seed, meta.steps, meta.cfg_scale, meta.sampler, meta.model, meta.prompt) == (None,) * 5 + (
        "",
    )
    assert {"sampler", "seed", "steps", "cfg"} <= {u.key for u in meta.unmapped}
    graph["3"]["inputs"]["latent_image"] = ["3", 0]  # a sampler fed by itself: no first pass to read
    assert "no KSampler" in read_comfy_prompt(graph).unmapped[-1].reason


def _junk(rng: random.Random, ids: list[str]) -> Any:
    return rng.choice(
        [
            None,
            [],
            {},
            "x",
            -1,
            10**30,
            1e308,
            True,
            [rng.choice(ids), 0],
            [rng.choice(ids), 99],
            ["404", 0],
            [[]],
            "\u202e",
        ]
    )


def _mutate(data: Any, rng: random.Random, ids: list[str]) -> Any:
    if isinstance(data, dict):
        return {k: (_junk(rng, ids) if rng.random() < 0.2 else _mutate(v, rng, ids)) for k, v in data.items()}
    if isinstance(data, list):
        return [(_junk(rng, ids) if rng.random() < 0.2 else _mutate(v, rng, ids)) for v in data]
    return data


def test_fuzzed_metadata_never_raises_anything_but_a_metadata_error() -> None:
    rng = random.Random(17)
    graph = comfy_api_graph()
    ids = list(graph)
    samples = [("prompt", graph), ("invokeai_metadata", INVOKE_4), ("parameters", FOOOCUS)]
    for _ in range(400):
        key, data = rng.choice(samples)
        text = json.dumps(_mutate(data, rng, ids))
        chunks = {key: text} | ({"fooocus_scheme": "fooocus"} if key == "parameters" else {})
        try:
            meta = read_foreign(chunks, text if key == "parameters" else None, None)
        except MetadataError:
            continue
        assert meta is None or isinstance(meta, ForeignMetadata)
        if meta is not None:
            meta.to_request(model="m")
            meta.mapped()


def test_info_prints_one_line_and_reproduce_refuses(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from ml_lib.diffusion.cli import app

    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path / "home"))
    path = tmp_path / "bad.png"
    path.write_bytes(png("prompt", '{"3": {"class_type": "KSampler", "inputs": ').getvalue())
    runner = CliRunner()
    shown = runner.invoke(app, ["info", str(path)])
    assert shown.exit_code == 0 and "not valid JSON" in shown.output and "Traceback" not in shown.output
    again = runner.invoke(app, ["reproduce", str(path), "--model", "x", "--out", str(tmp_path / "o")])
    assert again.exit_code == 1 and "not valid JSON" in again.output and "Traceback" not in again.output
    assert len(again.output.strip().splitlines()) == 1
