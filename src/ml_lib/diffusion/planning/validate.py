"""Check a plan read from an untrusted file (an image's metadata, a JSON file) before anything runs.

A plan from a file gets exactly the checks a request from the command line gets (sizes, steps, batch,
CFG, clip skip, seed, sampler and schedule, via :mod:`.checks` and :mod:`..samplers`), plus what only a
plan carries: device and dtype names, the image format, model references (local paths that are not
pickles; the Hugging Face Hub only when allowed), adapter weights and scales, and input image hashes.
Every problem is one :class:`PlanError` line naming the field and the fix. Pure: nothing is opened.
"""

from __future__ import annotations

import math
import re

from ..catalog.records import PICKLE_SUFFIXES
from ..errors import PlanError, RequestError
from ..plan import GenerationPlan, ImageRef, ModelFormat, ModelRef
from ..settings import Limits
from .checks import MAX_SEED, check_size
from .inputs import INPAINTING_FILLS, MAX_ADAPTER_SCALE, RESIZE_MODES

__all__ = [
    "DEVICES",
    "DTYPES",
    "validate_plan",
]

DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")
_CUDA_INDEX = re.compile(r"cuda:\d{1,3}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _fail(field: str, problem: str) -> PlanError:
    return PlanError(f"Plan field {field}: {problem}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int_in(field: str, value: object, low: int, high: int, fix: str) -> None:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        raise _fail(field, f"{value!r} is not a whole number between {low} and {high}; {fix}.")


def _number_in(field: str, value: object, low: float, high: float) -> None:
    if not _is_number(value) or not low <= value <= high:  # type: ignore[operator]
        raise _fail(field, f"{value!r} is not a finite number between {low:g} and {high:g}; use one that is.")


def _text(field: str, value: object, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise _fail(field, f"{value!r} must be {'text' if empty else 'non-empty text'}.")
    return value


def _not_pickle(field: str, path: object) -> None:
    text = _text(field, path, empty=False)
    suffix = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].rpartition(".")[2].lower()
    if f".{suffix}" in PICKLE_SUFFIXES:
        raise _fail(
            field,
            f"{text!r} is a pickle file, which a plan may not load (it can run code); "
            "convert it with `ml-diffusion models convert` and plan again.",
        )


def _image(field: str, ref: object, limits: Limits) -> None:
    if not isinstance(ref, ImageRef):
        raise _fail(field, "must be a stored input image reference; plan again with the image.")
    _text(f"{field}.path", ref.path, empty=False)
    if not isinstance(ref.sha256, str) or not _SHA256.fullmatch(ref.sha256):
        raise _fail(
            f"{field}.sha256", f"{ref.sha256!r} is not 64 lowercase hex digits; plan again with the image."
        )
    _int_in(f"{field}.width", ref.width, 1, limits.max_pixels, "plan again with the image")
    _int_in(f"{field}.height", ref.height, 1, limits.max_pixels, "plan again with the image")
    if ref.width * ref.height > limits.max_pixels:
        raise _fail(
            field,
            f"{ref.width}x{ref.height} is over the limit of {limits.max_pixels:,} pixels; downscale it.",
        )


def _model(model: object, allow_hub: bool) -> None:
    if not isinstance(model, ModelRef) or not isinstance(model.format, ModelFormat):
        raise _fail("model", "must be a model reference with a format (single_file, diffusers or hub).")
    if model.format is ModelFormat.HUB:
        _text("model.reference", model.reference, empty=False)
        if not allow_hub:
            raise _fail(
                "model.reference",
                f"{model.reference!r} is a Hugging Face Hub model, which a plan from a file may not download; "
                "download it yourself and plan with its folder, or allow the Hub explicitly.",
            )
    else:
        _not_pickle("model.reference", model.reference)
    if model.config_dir is not None:
        _not_pickle("model.config_dir", model.config_dir)
    _text("model.family", model.family, empty=False)


def _sizes_and_numbers(plan: GenerationPlan, limits: Limits) -> None:
    try:
        check_size(plan.width, plan.height, limits)
    except RequestError as exc:
        raise _fail("width/height", str(exc)) from exc
    _int_in("steps", plan.steps, 1, limits.max_steps, "use fewer steps")
    _int_in("batch_size", plan.batch_size, 1, limits.max_batch, "use a smaller batch")
    _number_in("cfg_scale", plan.cfg_scale, 0.0, limits.max_cfg)
    _int_in("clip_skip", plan.clip_skip, 1, 12, "1 is the last layer, 2 is common for anime models")
    _int_in("seed", plan.seed, 0, MAX_SEED, "use a seed in range")
    _int_in("threads", plan.threads, 0, 1024, "use a thread count no larger than the machine's cores")
    if plan.memory is not None:
        strategies = ("none", "balanced", "sequential", "aggressive")
        if plan.memory.strategy not in strategies:
            raise _fail("memory.strategy", f"{plan.memory.strategy!r} is not one of {', '.join(strategies)}.")
        _int_in("memory.estimated_peak_bytes", plan.memory.estimated_peak_bytes, 0, 1 << 50, "re-plan it")
        if plan.memory.budget_bytes is not None:
            _int_in("memory.budget_bytes", plan.memory.budget_bytes, 0, 1 << 50, "re-plan it")


def _names(plan: GenerationPlan) -> None:
    from ..output.metadata import normalize_format
    from ..output.naming import template_tokens
    from ..samplers import parse_sampler

    for field, check in (
        (
            "sampler/schedule",
            lambda: parse_sampler(_text("sampler", plan.sampler), _text("schedule", plan.schedule)),
        ),
        ("image_format", lambda: normalize_format(_text("image_format", plan.image_format))),
        ("name_template", lambda: template_tokens(_text("name_template", plan.name_template))),
    ):
        try:
            check()
        except RequestError as exc:
            raise _fail(field, str(exc)) from exc
    device = _text("device", plan.device)
    if device not in DEVICES and not _CUDA_INDEX.fullmatch(device):
        raise _fail("device", f"{device!r} is not a device we run on; use cpu, cuda, cuda:N or mps.")
    if plan.dtype not in DTYPES:
        raise _fail("dtype", f"{plan.dtype!r} is not a dtype we run in; use {', '.join(DTYPES)}.")
    _text("output_dir", plan.output_dir)


def _prompts(plan: GenerationPlan) -> None:
    from ..prompt.syntax import parse_prompt

    for field in ("prompt", "negative_prompt"):
        try:
            parse_prompt(_text(field, getattr(plan, field)))
        except RequestError as exc:
            raise _fail(field, str(exc)) from exc


def _prompt_schedule(plan: GenerationPlan) -> None:
    """A schedule must be the one the prompts, steps and sampler give (it is derived, never edited); a plan
    without one conditions on the prompts as written (as plans did before schedules)."""
    from ..settings import SDXL_EMPTY_NEGATIVE
    from .prompt_schedule import plan_prompt_schedule

    if plan.sdxl_empty_negative not in SDXL_EMPTY_NEGATIVE:
        raise _fail(
            "sdxl_empty_negative",
            f"{plan.sdxl_empty_negative!r} is not one of {', '.join(SDXL_EMPTY_NEGATIVE)}.",
        )
    if plan.prompt_schedule is None:
        return
    if plan.prompt_schedule != plan_prompt_schedule(
        plan.prompt, plan.negative_prompt, plan.steps, plan.sampler
    ):
        raise _fail(
            "prompt_schedule",
            "does not match the prompts, steps and sampler of the plan; remove it or plan again.",
        )


def _loras_and_embeddings(plan: GenerationPlan) -> None:
    from ..prompt.limits import MAX_NETWORK_WEIGHT

    for i, lora in enumerate(plan.loras):
        _text(f"loras[{i}].name", lora.name)
        _not_pickle(f"loras[{i}].path", lora.path)
        for part in ("unet_weight", "te_weight"):
            _number_in(f"loras[{i}].{part}", getattr(lora, part), -MAX_NETWORK_WEIGHT, MAX_NETWORK_WEIGHT)
    for i, embedding in enumerate(plan.embeddings):
        _text(f"embeddings[{i}].name", embedding.name)
        _not_pickle(f"embeddings[{i}].path", embedding.path)


def _controls_and_adapters(plan: GenerationPlan, limits: Limits) -> None:
    from ..imaging.preprocess import control_types

    known = ("none", *control_types())
    for i, unit in enumerate(plan.controls):
        _not_pickle(f"controls[{i}].model", unit.model)
        _image(f"controls[{i}].image", unit.image, limits)
        if unit.control_type not in known:
            raise _fail(
                f"controls[{i}].control_type",
                f"{unit.control_type!r} is unknown; use one of {', '.join(known)}.",
            )
        _number_in(f"controls[{i}].scale", unit.scale, 0.0, MAX_ADAPTER_SCALE)
        _number_in(f"controls[{i}].guidance_start", unit.guidance_start, 0.0, 1.0)
        _number_in(f"controls[{i}].guidance_end", unit.guidance_end, 0.0, 1.0)
        if unit.guidance_start >= unit.guidance_end:
            raise _fail(f"controls[{i}].guidance_start", "must be before guidance_end; swap or narrow them.")
    for i, ip in enumerate(plan.ip_adapters):
        _text(f"ip_adapters[{i}].model", ip.model, empty=False)
        _not_pickle(f"ip_adapters[{i}].weight_name", ip.weight_name)
        _text(f"ip_adapters[{i}].subfolder", ip.subfolder)
        _image(f"ip_adapters[{i}].image", ip.image, limits)
        _number_in(f"ip_adapters[{i}].scale", ip.scale, 0.0, MAX_ADAPTER_SCALE)
        for j, block in enumerate(ip.blocks):
            part = _text(f"ip_adapters[{i}].blocks[{j}].block", block.block).partition(".")[0]
            if part not in ("down", "mid", "up"):
                raise _fail(
                    f"ip_adapters[{i}].blocks[{j}].block", f"{block.block!r} must start with down, mid or up."
                )
            for value in block.scales:
                _number_in(f"ip_adapters[{i}].blocks[{j}].scales", value, 0.0, MAX_ADAPTER_SCALE)


def _init(plan: GenerationPlan, limits: Limits) -> None:
    init = plan.init
    if init is None:
        return
    _image("init.image", init.image, limits)
    _number_in("init.strength", init.strength, 0.0, 1.0)
    if init.resize_mode not in RESIZE_MODES:
        raise _fail(
            "init.resize_mode", f"{init.resize_mode!r} is unknown; use one of {', '.join(RESIZE_MODES)}."
        )
    if init.mask is not None:
        _image("init.mask", init.mask, limits)
    _int_in("init.mask_blur", init.mask_blur, 0, limits.max_side, "use a blur of a few pixels")
    _int_in("init.inpaint_padding", init.inpaint_padding, 0, limits.max_side, "use a padding of a few pixels")
    if not isinstance(init.inpaint_full_res, bool):
        raise _fail("init.inpaint_full_res", f"{init.inpaint_full_res!r} must be true or false.")
    if init.inpainting_fill not in INPAINTING_FILLS or (
        init.inpainting_fill != "original" and init.mask is None
    ):
        raise _fail(
            "init.inpainting_fill",
            f"{init.inpainting_fill!r} is unknown or needs a mask; use one of {', '.join(INPAINTING_FILLS)}.",
        )


def validate_plan(plan: GenerationPlan, limits: Limits, *, allow_hub: bool = False) -> None:
    """Raise PlanError for the first field of ``plan`` that a request from the command line could not
    have produced within ``limits``; ``allow_hub`` lets a Hub model reference through."""
    if not isinstance(plan, GenerationPlan):
        raise PlanError("Not a generation plan; give a plan written by ml-diffusion.")
    _model(plan.model, allow_hub)
    _sizes_and_numbers(plan, limits)
    _names(plan)
    _prompts(plan)
    _prompt_schedule(plan)
    _loras_and_embeddings(plan)
    _controls_and_adapters(plan, limits)
    _init(plan, limits)
    from .validate_passes import validate_passes

    validate_passes(plan, limits, allow_hub=allow_hub, not_pickle=_not_pickle)
