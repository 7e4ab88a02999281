"""Hostile image metadata: how long reading megabyte-sized text chunks takes, per shape of text.

Run: ``python benchmarks/hostile_metadata.py [--mb 1] [--reference-kb 16]``. For each shape (one long line,
many commas, many quotes, open quotes, deep nesting, keys without values) prints the seconds per MB of
``parse_infotext`` and of ``read_metadata`` on a PNG carrying the text, and, side by side at a small size,
A1111's regex against our scanner (A1111's is quadratic: it cannot run at 1 MB in reasonable time).
Then the seconds ``read_metadata`` takes on a PNG whose ComfyUI ``prompt`` chunk is a hostile graph
(a LoRA chain at the node cap, a chain of primitive links, a cycle, JSON nested past the parser's depth),
next to a plain ComfyUI graph.
"""

from __future__ import annotations

import argparse
import io
import re
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: A1111's parameter pattern (modules/infotext_utils.py), for the side-by-side reference.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

SHAPES: dict[str, str] = {
    "one long line": "word ",
    "many commas": "a,",
    "many quotes": 'k: "\\", ',
    "open quotes": 'ab: "x ',
    "deep nesting": "((((((((a:1.1)",
    "keys without values": "Steps 20 Sampler Euler ",
}


def hostile(shape: str, size: int) -> str:
    """``size`` characters of text of one shape, after a one-line prompt."""
    unit = SHAPES[shape]
    return "a prompt\n" + unit * (size // len(unit))


def seconds(fn: Callable[[T], object], arg: T) -> float:
    """Wall time of one call ``fn(arg)``."""
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def png_with(text: str) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def comfy_graphs(nodes: int) -> dict[str, str]:
    """Hostile ComfyUI API graphs of about ``nodes`` nodes, as JSON text, by shape."""
    import json

    def sampler(model: str, seed: object) -> dict[str, object]:
        return {
            "class_type": "KSampler",
            "inputs": {
                "model": [model, 0], "seed": seed, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
                "scheduler": "normal", "positive": ["p", 0], "negative": ["p", 0], "latent_image": ["l", 0],
            },
        }  # fmt: skip

    base = {
        "c": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
        "p": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["c", 1]}},
        "l": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    }
    plain = {**base, "s": sampler("c", 1)}
    loras = dict(base)
    for i in range(nodes):
        loras[f"r{i}"] = {
            "class_type": "LoraLoader",
            "inputs": {"model": [f"r{i - 1}" if i else "c", 0], "clip": ["c", 1], "lora_name": f"l{i}",
                       "strength_model": 1.0, "strength_clip": 1.0},
        }  # fmt: skip
    loras["s"] = sampler(f"r{nodes - 1}", 1)
    primitives = {**base, "s": sampler("c", ["v0", 0])}
    for i in range(nodes):
        primitives[f"v{i}"] = {"class_type": "PrimitiveNode", "inputs": {"value": [f"v{i + 1}", 0]}}
    cycle = {**base, "s": sampler("m0", 1)}
    for i in range(nodes):
        cycle[f"m{i}"] = {"class_type": "ModelPatch", "inputs": {"model": [f"m{(i + 1) % nodes}", 0]}}
    return {
        "plain graph": json.dumps(plain),
        "LoRA chain": json.dumps(loras),
        "primitive chain": json.dumps(primitives),
        "model cycle": json.dumps(cycle),
        "nested JSON": '{"a":' + "[" * 200_000,
    }


def png_chunk(key: str, text: str) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, text)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=1.0, help="size of each hostile text, in MB")
    parser.add_argument("--reference-kb", type=int, default=16, help="size for the A1111 regex comparison")
    args = parser.parse_args()

    from ml_lib.diffusion.output.infotext import find_parameters, parse_infotext
    from ml_lib.diffusion.output.metadata import read_metadata

    size = int(args.mb * (1 << 20))
    small = args.reference_kb << 10
    print(f"{'shape':<22}{'parse s/MB':>12}{'read s/MB':>12}{'A1111 s':>10}{'ours s':>10}{'ratio':>9}")
    for shape in SHAPES:
        text = hostile(shape, size)
        parse = seconds(parse_infotext, text) / args.mb
        data = png_with(text)
        read = seconds(read_metadata, io.BytesIO(data)) / args.mb
        last = hostile(shape, small).split("\n")[-1]
        theirs = seconds(A1111_PARAM.findall, last)
        ours = seconds(find_parameters, last)
        ratio = theirs / ours if ours > 0 else float("inf")
        print(f"{shape:<22}{parse:>12.3f}{read:>12.3f}{theirs:>10.3f}{ours:>10.4f}{ratio:>8.1f}x")

    from ml_lib.diffusion.output.foreign.comfy import MAX_NODES

    print(f"\n{'ComfyUI prompt chunk':<22}{'KB':>8}{'read s':>10}{'ratio':>9}  result")
    graphs = comfy_graphs(MAX_NODES - 10)
    read_metadata(io.BytesIO(png_chunk("prompt", graphs["plain graph"])))  # warm-up: imports, caches
    plain_seconds = None
    for shape, text in graphs.items():
        data = png_chunk("prompt", text)
        start = time.perf_counter()
        meta = read_metadata(io.BytesIO(data))
        took = time.perf_counter() - start
        plain_seconds = plain_seconds or took
        result = meta.foreign_error or f"{len(meta.foreign.unmapped) if meta.foreign else 0} unmapped"
        print(f"{shape:<22}{len(text) >> 10:>8}{took:>10.4f}{took / plain_seconds:>8.1f}x  {result[:60]}")


if __name__ == "__main__":
    main()
