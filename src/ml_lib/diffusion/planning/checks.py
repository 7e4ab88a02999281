"""Up-front checks of a GenerationRequest: every problem is a RequestError that names the fix."""

from __future__ import annotations

from ..errors import RequestError
from ..request import GenerationRequest
from ..settings import Limits

__all__ = ["MAX_SEED", "check_request", "check_size"]

MAX_SEED = 2**32 - 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fit(width: int, height: int, limits: Limits) -> tuple[int, int]:
    """The largest size of the same aspect, in multiples of 8, within both limits."""
    scale = min(
        1.0, limits.max_side / width, limits.max_side / height, (limits.max_pixels / (width * height)) ** 0.5
    )
    return max(8, int(width * scale) // 8 * 8), max(8, int(height * scale) // 8 * 8)


def check_size(width: int, height: int, limits: Limits) -> None:
    """Width and height positive multiples of 8 within the configured limits; every size suggested fits them."""
    top = limits.max_side // 8 * 8
    for name, value in (("width", width), ("height", height)):
        if not _is_int(value) or value <= 0:
            raise RequestError(f"{name} must be a positive integer, got {value!r}.")
        if value > limits.max_side:
            raise RequestError(
                f"{name} {value} is over the limit of {limits.max_side} px; use {top} or less "
                "(or raise Limits.max_side if your hardware allows)."
            )
        if value % 8:
            lower, upper = value - value % 8, value - value % 8 + 8
            choices = [str(v) for v in (lower, upper) if 8 <= v <= limits.max_side]
            raise RequestError(f"{name} {value} is not a multiple of 8; use {' or '.join(choices)}.")
    if width * height > limits.max_pixels:
        w, h = _fit(width, height, limits)
        raise RequestError(
            f"{width}x{height} is over the limit of {limits.max_pixels:,} pixels; use a smaller size, "
            f"e.g. {w}x{h}."
        )


def check_request(request: GenerationRequest, limits: Limits) -> None:
    """Raise RequestError for the first value that cannot be used."""
    if not isinstance(request.prompt, str):
        raise RequestError("The prompt must be text.")
    if not isinstance(request.negative_prompt, str):
        raise RequestError("The negative prompt must be text.")
    if request.width is not None or request.height is not None:
        check_size(request.width or 8, request.height or 8, limits)
    if request.steps is not None and (
        not _is_int(request.steps) or not 1 <= request.steps <= limits.max_steps
    ):
        raise RequestError(f"steps must be between 1 and {limits.max_steps}, got {request.steps!r}.")
    if request.cfg_scale is not None:
        cfg = request.cfg_scale
        if isinstance(cfg, bool) or not isinstance(cfg, (int, float)) or not 0 <= cfg <= limits.max_cfg:
            raise RequestError(f"CFG scale must be between 0 and {limits.max_cfg:g}, got {cfg!r}.")
    if request.batch_size is not None and (
        not _is_int(request.batch_size) or not 1 <= request.batch_size <= limits.max_batch
    ):
        raise RequestError(
            f"batch size must be between 1 and {limits.max_batch}, got {request.batch_size!r}."
        )
    if request.clip_skip is not None and (not _is_int(request.clip_skip) or not 1 <= request.clip_skip <= 12):
        raise RequestError(f"clip skip must be between 1 and 12 (1 = last layer), got {request.clip_skip!r}.")
    if request.seed is not None and (not _is_int(request.seed) or not -1 <= request.seed <= MAX_SEED):
        raise RequestError(f"seed must be between 0 and {MAX_SEED} (or -1 for random), got {request.seed!r}.")
