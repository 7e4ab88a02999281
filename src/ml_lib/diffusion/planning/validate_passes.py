"""Plan checks for the hires fix, the refiner, variation seeds and batch count (see :mod:`.validate`)."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import PlanError, RequestError
from ..plan import GenerationPlan, HiresPlan, ModelFormat, ModelRef
from ..prompt.syntax import parse_prompt
from ..samplers import parse_sampler
from ..settings import Limits
from .checks import MAX_SEED
from .hires import NO_IP_ADAPTERS, check_hires, is_builtin_upscaler
from .prompt_schedule import plan_hires_schedule
from .refiner import REFINER_FAMILIES

__all__ = ["validate_passes"]


def _fail(field: str, problem: str) -> PlanError:
    return PlanError(f"Plan field {field}: {problem}")


def _number(field: str, value: object, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:  # type: ignore[operator]
        raise _fail(field, f"{value!r} is not a number between {low:g} and {high:g}; re-plan it.")


def _int(field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(field, f"{value!r} is not a whole number between {low} and {high}; re-plan it.")


def _second_model(
    field: str,
    model: object,
    families: tuple[str, ...],
    allow_hub: bool,
    not_pickle: Callable[[str, object], None],
) -> None:
    """A second model of the plan (the refiner, the hires checkpoint): a reference to a file the plan may
    open, of one of ``families``."""
    if not isinstance(model, ModelRef) or not isinstance(model.format, ModelFormat):
        raise _fail(field, "must be a model reference with a format.")
    if model.format is ModelFormat.HUB and not allow_hub:
        raise _fail(f"{field}.reference", f"{model.reference!r} is a Hub model, which a plan may not fetch.")
    if model.format is not ModelFormat.HUB:
        not_pickle(f"{field}.reference", model.reference)
    if model.config_dir is not None:
        not_pickle(f"{field}.config_dir", model.config_dir)
    if model.family not in families:
        raise _fail(f"{field}.family", f"{model.family!r} is not {' or '.join(families)}.")


def _hires_schedule(plan: GenerationPlan, hires: HiresPlan) -> None:
    """The hires pass's schedule, when the plan has one, must be the one its prompts, steps and sampler
    give (derived, never edited); None conditions on the hires prompts as written, as plans before it."""
    if hires.prompt_schedule is None:
        return
    try:
        if hires.sampler:
            parse_sampler(hires.sampler, hires.schedule or None)
        parse_prompt(hires.prompt)
        parse_prompt(hires.negative_prompt)
    except RequestError as exc:
        raise _fail("hires", str(exc)) from exc
    expected = plan_hires_schedule(hires, plan.prompt, plan.negative_prompt, plan.steps, plan.sampler)
    if hires.prompt_schedule != expected:
        raise _fail(
            "hires.prompt_schedule",
            "does not match the prompts, steps and samplers of the plan; remove it or plan again.",
        )


def validate_passes(
    plan: GenerationPlan, limits: Limits, *, allow_hub: bool, not_pickle: Callable[[str, object], None]
) -> None:
    """Raise PlanError for the first bad value of ``plan``'s second passes, variation or batch count;
    ``not_pickle(field, path)`` is the plan validator's pickle check."""
    _int("batch_count", plan.batch_count, 1, 100)
    if plan.variation is not None:
        v = plan.variation
        _int("variation.seed", v.seed, 0, MAX_SEED)
        _number("variation.strength", v.strength, 0.0, 1.0)
        for side in ("resize_width", "resize_height"):
            _int(f"variation.{side}", getattr(v, side), 0, limits.max_side)
    if plan.hires is not None:
        h = plan.hires
        if plan.init is not None:
            raise _fail(
                "hires", "the hires fix is a txt2img pass; a plan with an init image cannot have one."
            )
        for field in ("scale", "denoise"):
            _number(f"hires.{field}", getattr(h, field), 0.0, 8.0)
        for field in ("resize_width", "resize_height", "steps"):
            _int(f"hires.{field}", getattr(h, field), 0, max(limits.max_side, limits.max_steps))
        if h.upscaler_path is not None:
            not_pickle("hires.upscaler_path", h.upscaler_path)
        elif not is_builtin_upscaler(h.upscaler):
            raise _fail("hires.upscaler", f"{h.upscaler!r} is not a latent mode, Lanczos, Nearest or None.")
        try:
            check_hires(h, plan.width, plan.height, limits)
        except RequestError as exc:
            raise _fail("hires", str(exc)) from exc
        _hires_schedule(plan, h)
        if h.checkpoint is not None:  # the hires pass continues the first pass's latents and LoRAs
            _second_model("hires.checkpoint", h.checkpoint, (plan.model.family,), allow_hub, not_pickle)
            if plan.ip_adapters:
                raise _fail("hires.checkpoint", NO_IP_ADAPTERS)
    if plan.refiner is not None:
        families = tuple(sorted(REFINER_FAMILIES))
        _second_model("refiner.model", plan.refiner.model, families, allow_hub, not_pickle)
        _number("refiner.switch_at", plan.refiner.switch_at, 0.0, 1.0)
