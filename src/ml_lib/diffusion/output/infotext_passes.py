"""The infotext keys of the hires fix, the SDXL refiner and variation seeds, written and read as
AUTOMATIC1111 writes them (``create_infotext`` and ``StableDiffusionProcessingTxt2Img.init``):

``Variation seed``, ``Variation seed strength`` (only with a strength), ``Seed resize from: WxH``,
``Denoising strength``, ``Hires sampler``, ``Hires schedule type``, ``Hires prompt``, ``Hires negative
prompt`` (only when they differ from the first pass), ``Hires upscale`` or ``Hires resize: WxH``,
``Hires steps`` (only when not 0), ``Hires upscaler``, ``Hires checkpoint: name [hash]`` (the checkpoint's
``short_title``, only when one is named), ``Refiner: name [hash]``, ``Refiner switch at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..plan import GenerationPlan, ModelRef

__all__ = ["A1111Passes", "parse_passes", "pass_pairs"]

_SIZE = re.compile(r"^\s*(-?\d+)\s*x\s*(-?\d+)\s*$")
_SHORT_HASH = re.compile(r"^(.*\S)\s+\[[0-9a-fA-F]{6,64}\]$")


def _num(value: float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _short_title(model: ModelRef) -> str:
    """A1111's ``CheckpointInfo.short_title``: the name, and ``[short hash]`` when it is known."""
    name = model.name or model.reference
    return f"{name} [{model.hash}]" if model.hash else name


def pass_pairs(plan: GenerationPlan, index: int = 0) -> list[tuple[str, str]]:
    """The A1111 keys of ``plan``'s variation seed, hires fix and refiner for image ``index`` of the run."""
    pairs: list[tuple[str, str]] = []
    variation = plan.variation
    if variation is not None:
        if variation.strength != 0:
            subseeds = plan.subseeds
            pairs.append(("Variation seed", str(subseeds[min(index, len(subseeds) - 1)])))
            pairs.append(("Variation seed strength", _num(variation.strength)))
        if variation.resize_width > 0 and variation.resize_height > 0:
            pairs.append(("Seed resize from", f"{variation.resize_width}x{variation.resize_height}"))
    hires = plan.hires
    if hires is not None:
        pairs.append(("Denoising strength", _num(hires.denoise)))
        if hires.checkpoint is not None:  # StableDiffusionProcessingTxt2Img.init writes it first
            pairs.append(("Hires checkpoint", _short_title(hires.checkpoint)))
        if hires.sampler and hires.sampler != plan.sampler:
            pairs.append(("Hires sampler", hires.sampler))
        if hires.schedule and hires.schedule != plan.schedule:
            pairs.append(("Hires schedule type", hires.schedule))
        if hires.prompt and hires.prompt != plan.prompt:
            pairs.append(("Hires prompt", hires.prompt))
        if hires.negative_prompt and hires.negative_prompt != plan.negative_prompt:
            pairs.append(("Hires negative prompt", hires.negative_prompt))
        if hires.resize_width or hires.resize_height:
            pairs.append(("Hires resize", f"{hires.resize_width}x{hires.resize_height}"))
        else:
            pairs.append(("Hires upscale", _num(hires.scale)))
        if hires.steps:
            pairs.append(("Hires steps", str(hires.steps)))
        pairs.append(("Hires upscaler", hires.upscaler))
    refiner = plan.refiner
    if refiner is not None:
        pairs.append(("Refiner", _short_title(refiner.model)))
        pairs.append(("Refiner switch at", _num(refiner.switch_at)))
    return pairs


@dataclass(frozen=True, slots=True)
class A1111Passes:
    """What an infotext says about variation seeds, the hires fix and the refiner (None: not said).

    ``hires`` is True when any hires key is present (A1111 writes "Hires upscale" or "Hires resize" for
    every hires image); ``refiner`` and ``hires_checkpoint`` are checkpoint names without their ``[hash]``.
    """

    variation_seed: int | None = None
    variation_strength: float | None = None
    seed_resize_from: tuple[int, int] | None = None
    denoising_strength: float | None = None
    hires: bool = False
    hires_scale: float | None = None
    hires_resize: tuple[int, int] | None = None
    hires_steps: int | None = None
    hires_upscaler: str | None = None
    hires_sampler: str | None = None
    hires_schedule: str | None = None
    hires_prompt: str | None = None
    hires_negative_prompt: str | None = None
    hires_checkpoint: str | None = None
    hires_checkpoint_hash: str | None = None
    refiner: str | None = None
    refiner_hash: str | None = None
    refiner_switch: float | None = None

    def request_fields(self) -> dict[str, Any]:
        """These values as :class:`~ml_lib.diffusion.request.GenerationRequest` keyword arguments (the
        refiner by name, for the catalog to find; img2img's denoising strength is left to the caller)."""
        out: dict[str, Any] = {}
        if self.variation_strength:
            out.update(variation_seed=self.variation_seed, variation_strength=self.variation_strength)
        if self.seed_resize_from is not None:
            out["seed_resize_from"] = self.seed_resize_from
        if self.hires:
            out["hires"] = True
            for key in ("hires_scale", "hires_resize", "hires_steps", "hires_upscaler"):
                if getattr(self, key) is not None:
                    out[key] = getattr(self, key)
            if self.hires_sampler is not None:
                sampler = self.hires_sampler
                if self.hires_schedule and self.hires_schedule != "Automatic":
                    sampler = f"{sampler} {self.hires_schedule}"
                out["hires_sampler"] = sampler
            if self.hires_prompt is not None:
                out["hires_prompt"] = self.hires_prompt
            if self.hires_negative_prompt is not None:
                out["hires_negative_prompt"] = self.hires_negative_prompt
            if self.denoising_strength is not None:
                out["hires_denoise"] = self.denoising_strength
            if self.hires_checkpoint is not None:
                out["hires_checkpoint"] = self.hires_checkpoint
        if self.refiner is not None:
            out["refiner"] = self.refiner
            if self.refiner_switch is not None:
                out["refiner_switch"] = self.refiner_switch
        return out


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value.strip()) if value is not None else None
    except ValueError:
        return None


def _size(value: str | None, *, off_below: int = 0) -> tuple[int, int] | None:
    match = _SIZE.match(value) if value else None
    if match is None:
        return None
    w, h = int(match.group(1)), int(match.group(2))
    return None if w <= off_below or h <= off_below else (w, h)


def _title(value: str | None) -> tuple[str | None, str | None]:
    """(name, short hash) of a checkpoint's ``short_title`` ("name [hash]"; the hash None when absent)."""
    if value is None:
        return None, None
    value = value.strip()
    match = _SHORT_HASH.match(value)
    if match is None:
        return value or None, None
    return match.group(1), value[len(match.group(1)) :].strip(" []")


def parse_passes(info: Any) -> A1111Passes:
    """The variation, hires and refiner keys of a parsed infotext (:class:`.infotext.Infotext`); never
    raises (a value that does not parse is left None)."""
    get = info.get
    hires_keys = ("Hires upscale", "Hires resize", "Hires steps", "Hires upscaler", "Hires sampler")
    refiner, refiner_hash = _title(get("Refiner"))
    checkpoint, checkpoint_hash = _title(get("Hires checkpoint"))
    if checkpoint is not None and checkpoint.casefold() == "use same checkpoint":
        checkpoint = checkpoint_hash = None  # what A1111's reader puts for a missing key
    return A1111Passes(
        variation_seed=_int(get("Variation seed")),
        variation_strength=_float(get("Variation seed strength")),
        seed_resize_from=_size(get("Seed resize from")),
        denoising_strength=_float(get("Denoising strength")),
        hires=any(get(k) is not None for k in hires_keys) or checkpoint is not None,
        hires_scale=_float(get("Hires upscale")),
        hires_resize=_size(get("Hires resize"), off_below=-1),
        hires_steps=_int(get("Hires steps")),
        hires_upscaler=get("Hires upscaler"),
        hires_sampler=get("Hires sampler"),
        hires_schedule=get("Hires schedule type"),
        hires_prompt=get("Hires prompt"),
        hires_negative_prompt=get("Hires negative prompt"),
        hires_checkpoint=checkpoint,
        hires_checkpoint_hash=checkpoint_hash,
        refiner=refiner,
        refiner_hash=refiner_hash,
        refiner_switch=_float(get("Refiner switch at")),
    )
