"""A1111-style infotext (AUTOMATIC1111, Forge, SD.Next, Fooocus's A1111 scheme) → :class:`ForeignMetadata`.

Every key of the parameters line is either honoured, informational (it does not change the image), or
listed as unmapped with the reason. :data:`KEY_REASONS` is the extension point: when the plan gains a
field, move its keys from there to a handler in :func:`read_infotext` (as the hires fix, refiner and
variation seed keys went to :data:`_PASS_KEYS`).
"""

from __future__ import annotations

import re

from ...errors import UnknownSamplerError
from ...samplers import parse_sampler
from ..comfyui_names import from_comfy_sampler
from ..infotext import Infotext
from ..infotext_passes import parse_passes
from ._values import size_pair
from .records import ForeignMetadata, Unmapped

__all__ = ["INFORMATIONAL_KEYS", "KEY_REASONS", "read_infotext", "tool_of"]

#: Keys read into the request (Sampler, Schedule type, Size … are read by the Infotext parser).
_HONOURED = frozenset(
    {
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model",
        "Clip skip",
        "Size-1",
        "Size-2",
    }
)
#: Keys that describe the image without changing how it is made (hashes, versions, names).
INFORMATIONAL_KEYS = frozenset(
    {
        "Model hash", "Lora hashes", "TI hashes", "Version", "App", "Backend", "Pipeline", "Operations",
        "Index", "User", "Comment", "Raw prompt", "Raw negative prompt", "Styles", "Performance",
        "Refiner hash", "Hashes", "Emphasis", "Parser", "Batch",
    }
)  # fmt: skip
_NOT_YET = "not in the plan yet"
#: A1111's second-pass and seed keys, read by :func:`~..infotext_passes.parse_passes`: each is honoured when
#: the request field next to it was set from them.
_PASS_KEYS = {
    "Hires upscale": "hires", "Hires resize": "hires", "Hires steps": "hires", "Hires upscaler": "hires",
    "Hires sampler": "hires", "Hires schedule type": "hires", "Hires prompt": "hires",
    "Hires negative prompt": "hires", "Denoising strength": "hires", "Hires checkpoint": "hires_checkpoint",
    "Refiner": "refiner",
    "Refiner switch at": "refiner", "Variation seed": "variation_seed",
    "Variation seed strength": "variation_seed", "Seed resize from": "seed_resize_from",
}  # fmt: skip
#: Keys we know and cannot honour yet, with the reason (prefix match for numbered ones, e.g. "ControlNet 0").
KEY_REASONS: dict[str, str] = {
    "Hires CFG scale": "a second-pass CFG scale is not supported",
    "Hires strength": "Forge's hires strength is not supported",
    "Hires scale": "SD.Next's hires scale is not supported",
    "Hires size": "SD.Next's hires size is not supported",
    "Hires mode": "SD.Next's hires mode is not supported",
    "Hires force": "SD.Next's hires force is not supported",
    "Hires refiner": "only A1111's default (the refiner in the hires pass) is supported",
    "Refine": "SD.Next's refine pass is not supported",
    "Refiner start": "SD.Next's refiner start is not supported",
    "Refiner steps": "SD.Next's refiner steps are not supported",
    "Refiner Switch": "Fooocus's refiner switch is not supported",
    "Refiner Swap Method": "Fooocus's refiner swap is not supported",
    "Variation strength": "SD.Next's variation strength is not supported",
    "Denoising strength": "img2img needs the source image, which the file does not carry",
    "Mask blur": "inpainting needs the source image and mask, which the file does not carry",
    "ControlNet": "a ControlNet needs its control image, which the file does not carry",
    "IP-Adapter": "an IP-Adapter needs its reference image, which the file does not carry",
    "ENSD": "eta noise seed delta is not supported",
    "Eta": "sampler eta is not supported",
    "Eta DDIM": "sampler eta is not supported",
    "Sampler eta delta": "eta noise seed delta is not supported",
    "Face restoration": "face restoration is not supported",
    "ADetailer": "ADetailer is not supported",
    "Sharpness": "Fooocus sharpness has no diffusers counterpart",
    "ADM Guidance": "Fooocus ADM guidance has no diffusers counterpart",
    "Adaptive CFG": "Fooocus adaptive CFG has no diffusers counterpart",
    "FreeU": "FreeU is not supported",
    "VAE": "a separate VAE is not supported",
    "CFG rescale": "CFG rescale is not supported",
    "Distilled CFG Scale": "Flux distilled guidance is not supported",
    "RNG": "A1111's RNG source option is not supported (noise is drawn on the CPU)",
    "Discard penultimate sigma": "A1111's always-discard option is not supported (DPM2, DPM2 a and DPM++ 3M "
    "SDE drop it, as A1111 does by default)",
}
_SDNEXT_SIGMA = {"karras": "Karras", "exponential": "Exponential", "beta": "Beta", "default": None}


def tool_of(info: Infotext) -> str:
    """Which A1111-like tool wrote the infotext (from its App and Version keys)."""
    version = info.get("Version") or ""
    if info.get("App") == "SD.Next":
        return "SD.Next"
    if version.startswith("ml-lib"):
        return "ml-diffusion"
    if "Fooocus" in version:
        return "Fooocus"
    if re.match(r"^f\d", version):
        return "Forge"
    return "A1111"


def _reason(key: str) -> str | None:
    if key in KEY_REASONS:
        return KEY_REASONS[key]
    prefix = re.sub(r"[\s_-]*\d+$", "", key)  # "ControlNet 0", "ADetailer model 2nd" → their family
    for known, reason in KEY_REASONS.items():
        if prefix == known or key.startswith(known + " "):
            return reason
    return None


def read_infotext(info: Infotext, source: str = "parameters") -> ForeignMetadata:
    """The mapped settings of an A1111-like infotext and the list of what is not honoured."""
    unmapped: list[Unmapped] = []
    sampler, schedule = _sampler(info, unmapped)
    passes = parse_passes(info).request_fields()
    width, height = info.width, info.height
    if width is None and (pair := size_pair(f"{info.get('Size-1')}x{info.get('Size-2')}")):
        width, height = pair  # SD.Next before "Size"
    for key, value in info.parameters:
        if key in _HONOURED or key in INFORMATIONAL_KEYS or key in ("Scheduler", "Sampler sigma"):
            continue
        if key in _PASS_KEYS and _PASS_KEYS[key] in passes:
            continue  # honoured by the hires fix, the refiner or the variation seed
        if key == "Emphasis" and value != "Original":
            unmapped.append(Unmapped(key, value, "only A1111's original emphasis is implemented"))
            continue
        unmapped.append(Unmapped(key, value, _reason(key) or "not supported"))
    clip_skip = info.clip_skip
    return ForeignMetadata(
        tool=tool_of(info),
        source=source,
        prompt=info.prompt,
        negative_prompt=info.negative_prompt,
        model=info.model,
        model_hash=info.model_hash,
        width=width,
        height=height,
        steps=info.steps,
        cfg_scale=info.cfg_scale,
        sampler=sampler,
        schedule=schedule,
        seed=info.seed,
        clip_skip=clip_skip if clip_skip is not None and clip_skip >= 1 else None,
        unmapped=tuple(unmapped),
        passes=tuple(passes.items()),
    )


def _sampler(info: Infotext, unmapped: list[Unmapped]) -> tuple[str | None, str | None]:
    """Our sampler and schedule from A1111 names, SD.Next's ``Sampler sigma`` or Fooocus's ComfyUI names."""
    raw = info.get("Sampler")
    if raw is None:
        return None, None
    schedule = info.get("Schedule type")
    sigma = (info.get("Sampler sigma") or "").lower()
    if schedule is None and sigma in _SDNEXT_SIGMA:
        schedule = _SDNEXT_SIGMA[sigma]
    elif schedule is None and sigma:
        unmapped.append(Unmapped("Sampler sigma", sigma, "this SD.Next sigma schedule is not supported"))
    try:
        choice = parse_sampler(raw, schedule)
        return choice.sampler, choice.schedule
    except UnknownSamplerError as exc:
        comfy, note = from_comfy_sampler(raw, info.get("Scheduler"))  # Fooocus writes ComfyUI names
        if comfy is not None:
            if note:
                unmapped.append(Unmapped("Scheduler", info.get("Scheduler") or "", note))
            return comfy.sampler, comfy.schedule
        unmapped.append(Unmapped("Sampler", raw if schedule is None else f"{raw} / {schedule}", str(exc)))
        return None, None
