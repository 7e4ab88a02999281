"""Fooocus's JSON scheme (``fooocus_scheme: fooocus``; the ``parameters`` chunk or EXIF UserComment) →
:class:`ForeignMetadata`, with the keys of lllyasviel/Fooocus ``modules/meta_parser.py``.

The expanded prompt (``full_prompt``: styles and the Fooocus V2 expansion applied) is what Fooocus
encoded, so it is the prompt here; its parts are joined with ", ". Sampler and scheduler are ComfyUI
names. Fooocus's own sampling tricks (sharpness, ADM guidance, adaptive CFG, refiner swap) are unmapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from ...errors import ForeignMetadataError
from ..comfyui_names import from_comfy_sampler
from ._values import as_float, as_int, as_text, field_text, size_pair
from .records import ForeignLora, ForeignMetadata, Unmapped

__all__ = ["read_fooocus"]

_READ = frozenset(
    {
        "prompt", "negative_prompt", "full_prompt", "full_negative_prompt", "resolution", "guidance_scale",
        "sampler", "scheduler", "seed", "steps", "base_model", "base_model_hash", "clip_skip", "loras",
        "version", "created_by", "metadata_scheme", "styles", "performance", "image_number",
    }
)  # fmt: skip
_NO: tuple[object, ...] = (None, "", "None", [], {}, False)
_REASONS = {
    "sharpness": "Fooocus sharpness has no diffusers counterpart",
    "adm_guidance": "Fooocus ADM guidance has no diffusers counterpart",
    "adaptive_cfg": "Fooocus adaptive CFG has no diffusers counterpart",
    "refiner": "the refiner is not in the plan yet",
    "vae": "a separate VAE is not supported",
    "freeu": "FreeU is not supported",
    "inpaint": "inpainting needs the source image, which the file does not carry",
}


def _joined(value: Any, fallback: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return ", ".join(value)
    return as_text(fallback) or ""


def read_fooocus(data: Any) -> ForeignMetadata:
    """Settings of a Fooocus JSON parameters object."""
    if not isinstance(data, Mapping):
        raise ForeignMetadataError("The Fooocus parameters in the image are not a JSON object.")
    unmapped: list[Unmapped] = []
    for key in data:
        if key in _READ or str(key).startswith("lora_combined_") or data[key] in _NO:
            continue
        if key == "refiner_switch" and data.get("refiner_model") in _NO:
            continue
        reason = next((r for prefix, r in _REASONS.items() if str(key).startswith(prefix)), "not supported")
        unmapped.append(Unmapped(str(key), field_text(data, key), reason))
    size = size_pair(data.get("resolution"))
    sampler = schedule = None
    raw = as_text(data.get("sampler"))
    if raw is not None:
        choice, note = from_comfy_sampler(raw, as_text(data.get("scheduler")))
        if choice is not None:
            sampler, schedule = choice.sampler, choice.schedule
        if note is not None:
            unmapped.append(Unmapped("sampler", f"{raw} / {data.get('scheduler')}", note))
    model = as_text(data.get("base_model"))
    return ForeignMetadata(
        tool="Fooocus",
        source="parameters (Fooocus JSON)",
        prompt=_joined(data.get("full_prompt"), data.get("prompt")),
        negative_prompt=_joined(data.get("full_negative_prompt"), data.get("negative_prompt")),
        model=PurePath(model).stem if model else None,
        model_hash=as_text(data.get("base_model_hash")),
        width=size[0] if size else None,
        height=size[1] if size else None,
        steps=as_int(data.get("steps")),
        cfg_scale=as_float(data.get("guidance_scale")),
        sampler=sampler,
        schedule=schedule,
        seed=as_int(data.get("seed")),
        clip_skip=as_int(data.get("clip_skip")),
        loras=_loras(data, unmapped),
        unmapped=tuple(unmapped),
    )


def _loras(data: Mapping[str, Any], unmapped: list[Unmapped]) -> tuple[ForeignLora, ...]:
    """``lora_combined_N`` = "name : weight" (or "enabled : name : weight"), else the ``loras`` list."""
    out: list[ForeignLora] = []
    combined = sorted(k for k in data if isinstance(k, str) and k.startswith("lora_combined_"))
    for key in combined:
        parts = [p.strip() for p in str(data[key]).split(" : ")]
        if len(parts) == 3 and parts[0] in ("True", "False"):
            if parts[0] == "False":
                continue
            parts = parts[1:]
        weight = as_float(parts[1]) if len(parts) == 2 else None
        if weight is None or parts[0] in ("", "None"):
            unmapped.append(Unmapped(key, field_text(data, key), "a LoRA entry that cannot be read"))
            continue
        out.append(ForeignLora(PurePath(parts[0]).stem, weight, weight))
    if not combined and isinstance(data.get("loras"), list):
        for entry in data["loras"]:
            if isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str):
                weight = as_float(entry[1])
                if weight is not None:
                    out.append(ForeignLora(PurePath(entry[0]).stem, weight, weight))
    return tuple(out)
