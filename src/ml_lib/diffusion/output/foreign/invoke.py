"""InvokeAI metadata → :class:`ForeignMetadata`: the ``invokeai_metadata`` chunk (3.x+, the fields of
``CoreMetadataInvocation`` in invoke-ai/InvokeAI ``invokeai/app/invocations/metadata.py``) and the older
``sd-metadata`` chunk (1.15-2.3, read as InvokeAI's own importer reads it: ``model_weights``, ``image.*``,
the negative prompt in ``[brackets]`` of the prompt)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...errors import ForeignMetadataError
from ...samplers import SamplerChoice, parse_sampler
from ._values import as_float, as_int, as_text, field_text
from .records import ForeignLora, ForeignMetadata, Unmapped

__all__ = ["INVOKE_SCHEDULERS", "read_invoke", "read_sd_metadata"]

#: InvokeAI scheduler names (``SCHEDULER_MAP`` in invokeai/backend/stable_diffusion/schedulers) → ours.
INVOKE_SCHEDULERS: dict[str, tuple[str, str]] = {
    "ddim": ("DDIM", "Uniform"),
    "ddpm": ("DDPM", "Uniform"),
    "deis": ("DEIS", "Uniform"),
    "lms": ("LMS", "Uniform"),
    "lms_k": ("LMS", "Karras"),
    "pndm": ("PLMS", "Uniform"),
    "heun": ("Heun", "Uniform"),
    "heun_k": ("Heun", "Karras"),
    "euler": ("Euler", "Uniform"),
    "euler_k": ("Euler", "Karras"),
    "euler_a": ("Euler a", "Uniform"),
    "kdpm_2": ("DPM2", "Uniform"),
    "kdpm_2_a": ("DPM2 a", "Uniform"),
    "dpmpp_2m": ("DPM++ 2M", "Uniform"),
    "dpmpp_2m_k": ("DPM++ 2M", "Karras"),
    "dpmpp_2m_sde": ("DPM++ 2M SDE", "Uniform"),
    "dpmpp_2m_sde_k": ("DPM++ 2M SDE", "Karras"),
    "dpmpp_sde": ("DPM++ SDE", "Uniform"),
    "dpmpp_sde_k": ("DPM++ SDE", "Karras"),
    "unipc": ("UniPC", "Uniform"),
    "lcm": ("LCM", "Uniform"),
}
#: Keys that do not change the image, or are read below.
_READ = frozenset(
    {
        "positive_prompt", "negative_prompt", "width", "height", "seed", "cfg_scale", "steps", "scheduler",
        "clip_skip", "model", "loras", "app_version", "generation_mode", "rand_device", "regions",
        "canvas_v2_metadata", "_canvas_objects",
    }
)  # fmt: skip
_EMPTY: tuple[object, ...] = (None, "", [], {}, False, 0, 0.0)
_NOT_YET = "not in the plan yet"
_REASONS = {
    "hrf": f"hires fix is {_NOT_YET}",
    "refiner": f"the refiner is {_NOT_YET}",
    "controlnets": "a ControlNet needs its control image, which the file does not carry",
    "ipAdapters": "an IP-Adapter needs its reference image, which the file does not carry",
    "t2iAdapters": "T2I-Adapters are not supported",
    "strength": "img2img needs the source image, which the file does not carry",
    "init_image": "img2img needs the source image, which the file does not carry",
    "vae": "a separate VAE is not supported",
    "seamless": "seamless tiling is not supported",
    "cfg_rescale_multiplier": "CFG rescale is not supported",
    "positive_style_prompt": "SDXL style prompts are not supported",
    "negative_style_prompt": "SDXL style prompts are not supported",
}


def _name(model: Any) -> str | None:
    """A model's name from 4.x (``name``) or 3.x (``model_name``) fields."""
    if isinstance(model, Mapping):
        return as_text(model.get("name")) or as_text(model.get("model_name"))
    return as_text(model)


def _scheduler(raw: Any, unmapped: list[Unmapped]) -> SamplerChoice | None:
    if not isinstance(raw, str):
        return None
    if raw in INVOKE_SCHEDULERS:
        return parse_sampler(*INVOKE_SCHEDULERS[raw])
    unmapped.append(Unmapped("scheduler", raw, "this InvokeAI scheduler has no counterpart here"))
    return None


def read_invoke(data: Any) -> ForeignMetadata:
    """Settings of an ``invokeai_metadata`` chunk (already parsed JSON)."""
    if not isinstance(data, Mapping):
        raise ForeignMetadataError("The InvokeAI metadata in the image is not a JSON object.")
    unmapped: list[Unmapped] = []
    for key in data:
        if key in _READ or data[key] in _EMPTY:
            continue
        reason = next((r for prefix, r in _REASONS.items() if str(key).startswith(prefix)), "not supported")
        unmapped.append(Unmapped(str(key), field_text(data, key), reason))
    mode = as_text(data.get("generation_mode")) or "txt2img"
    if mode not in ("txt2img", "sdxl_txt2img"):
        unmapped.append(
            Unmapped("generation_mode", mode, "needs the source image, which the file does not carry")
        )
    if data.get("rand_device") not in (None, "cpu"):
        unmapped.append(
            Unmapped("rand_device", field_text(data, "rand_device"), "noise is drawn on the CPU here")
        )
    choice = _scheduler(data.get("scheduler"), unmapped)
    skip = as_int(data.get("clip_skip"))
    return ForeignMetadata(
        tool="InvokeAI",
        source="invokeai_metadata",
        prompt=as_text(data.get("positive_prompt")) or "",
        negative_prompt=as_text(data.get("negative_prompt")) or "",
        model=_name(data.get("model")),
        width=as_int(data.get("width")),
        height=as_int(data.get("height")),
        steps=as_int(data.get("steps")),
        cfg_scale=as_float(data.get("cfg_scale")),
        sampler=choice.sampler if choice else None,
        schedule=choice.schedule if choice else None,
        seed=as_int(data.get("seed")),
        clip_skip=skip + 1 if skip is not None and skip >= 0 else None,  # InvokeAI counts skipped layers
        loras=_loras(data.get("loras"), unmapped),
        unmapped=tuple(unmapped),
    )


def _loras(entries: Any, unmapped: list[Unmapped]) -> tuple[ForeignLora, ...]:
    out: list[ForeignLora] = []
    for entry in entries if isinstance(entries, list) else ():
        model = entry.get("model", entry.get("lora")) if isinstance(entry, Mapping) else None
        name, weight = _name(model), as_float(entry.get("weight")) if isinstance(entry, Mapping) else None
        if name is None or weight is None:
            unmapped.append(Unmapped("loras", str(entry)[:80], "a LoRA entry without a name or weight"))
            continue
        out.append(ForeignLora(name, weight, weight))
    return tuple(out)


_LEGACY_SAMPLERS = {"k_dpmpp_2": "DPM++ 2M", "plms": "PLMS"}


def read_sd_metadata(data: Any) -> ForeignMetadata:
    """Settings of a legacy ``sd-metadata`` chunk (InvokeAI 1.15-2.3)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("image", {}), Mapping):
        raise ForeignMetadataError(
            "The InvokeAI sd-metadata in the image is not a JSON object with an 'image'."
        )
    image = data.get("image", {})
    unmapped: list[Unmapped] = []
    raw_prompt = image.get("prompt")
    if isinstance(raw_prompt, list) and raw_prompt and isinstance(raw_prompt[0], Mapping):
        raw_prompt = raw_prompt[0].get("prompt")
    prompt, negative = _split_negative(as_text(raw_prompt) or "")
    sampler = as_text(image.get("sampler"))
    choice = None
    if sampler is not None:
        try:
            choice = parse_sampler(_LEGACY_SAMPLERS.get(sampler, sampler))
        except ValueError:
            unmapped.append(Unmapped("sampler", sampler, "this InvokeAI sampler has no counterpart here"))
    for key in (
        "strength",
        "init_image_path",
        "init_img",
        "variations",
        "hires_fix",
        "seamless",
        "threshold",
        "perlin",
    ):
        if image.get(key) not in _EMPTY:
            unmapped.append(Unmapped(key, field_text(image, key), "not supported"))
    if image.get("type") not in (None, "txt2img"):
        unmapped.append(
            Unmapped(
                "type", field_text(image, "type"), "needs the source image, which the file does not carry"
            )
        )
    return ForeignMetadata(
        tool="InvokeAI",
        source="sd-metadata",
        prompt=prompt,
        negative_prompt=negative,
        model=as_text(data.get("model_weights")),
        model_hash=as_text(data.get("model_hash")),
        width=as_int(image.get("width")),
        height=as_int(image.get("height")),
        steps=as_int(image.get("steps")),
        cfg_scale=as_float(image.get("cfg_scale")),
        sampler=choice.sampler if choice else None,
        schedule=choice.schedule if choice else None,
        seed=as_int(image.get("seed")),
        unmapped=tuple(unmapped),
    )


def _split_negative(raw: str) -> tuple[str, str]:
    """InvokeAI 2.x wrote negative words in square brackets inside the prompt."""
    flat = raw.replace("\r", "").replace("\n", "")
    found = re.findall(r"\[(.+?)\]", flat)
    if not found:
        return flat.strip(), ""
    negative = ", ".join(part.strip().strip(",") for part in found)
    return re.sub(r"\[.+?\]", "", flat).strip(), negative
