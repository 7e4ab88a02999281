"""Server limits, checked before anything is allocated: body size, prompt length, size, steps, batch,
and input images (base64 well formed, header-declared pixels within bounds)."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

from ..errors import InputImageError, RequestError
from ..settings import Limits

__all__ = ["ServerLimits", "check_generation", "check_name", "decode_image", "prompt_names"]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one request may ask for (the generation limits come from the settings)."""

    max_body: int = 32 * 1024 * 1024
    max_prompt_chars: int = 20_000
    max_input_pixels: int = 4096 * 4096
    generation: Limits = field(default_factory=Limits)


def check_generation(
    limits: ServerLimits,
    *,
    prompt: str,
    negative: str,
    width: int | None,
    height: int | None,
    steps: int | None,
    batch: int,
) -> None:
    """RequestError naming the first limit the request exceeds."""
    gen = limits.generation
    for label, text in (("prompt", prompt), ("negative_prompt", negative)):
        if len(text) > limits.max_prompt_chars:
            raise RequestError(f"{label} has {len(text)} characters; the limit is {limits.max_prompt_chars}.")
    for label, side in (("width", width), ("height", height)):
        if side is not None and not 8 <= side <= gen.max_side:
            raise RequestError(f"{label} {side} is out of range: use 8 to {gen.max_side} pixels.")
    if width is not None and height is not None and width * height > gen.max_pixels:
        raise RequestError(f"{width}x{height} is more than {gen.max_pixels} pixels; ask for a smaller size.")
    if steps is not None and not 1 <= steps <= gen.max_steps:
        raise RequestError(f"steps {steps} is out of range: use 1 to {gen.max_steps}.")
    if not 1 <= batch <= gen.max_batch:
        raise RequestError(f"batch_size * n_iter = {batch} is out of range: use 1 to {gen.max_batch}.")


def decode_image(text: str, label: str, limits: ServerLimits) -> bytes:
    """The bytes of a base64 image (``data:`` URL prefix allowed), its header checked, nothing decoded."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputImageError(
            f"{label} is not valid base64 ({exc}); send the image file's bytes base64-encoded."
        ) from exc
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputImageError(f"{label} is not an image Pillow can read; send a PNG, JPEG or WebP.") from exc
    if width * height > limits.max_input_pixels:
        raise InputImageError(
            f"{label} is {width}x{height}, more than {limits.max_input_pixels} pixels; send a smaller image."
        )
    return data


def check_name(name: str, label: str) -> str:
    """``name`` when it is a plain model name; a file path (separators, leading dot or ``~``) sent by a
    client is refused: over HTTP, models are named, never located."""
    if "/" in name or "\\" in name or name.startswith((".", "~")) or ":" in name:
        raise RequestError(
            f"{label} {name!r} is a path; over HTTP name a catalogued model (see the list routes)."
        )
    return name


def prompt_names(prompt: str, negative: str) -> None:
    """Check the ``<lora:name:w>`` tags of both prompts name models, not files."""
    from ..prompt.syntax import parse_prompt

    for text in (prompt, negative):
        for ref in parse_prompt(text).loras:
            check_name(ref.name, "<lora:…> tag")
