"""Variation seeds, seed resize and batch count as A1111 plans them (pure).

A1111 (modules/processing.py, ``process_images_inner``): with a variation strength of 0 image ``i`` of the
whole run uses ``seed + i``; with a strength above 0 every image uses ``seed`` and the variation seed
advances instead (``subseed + i``). Batch count (``n_iter``) runs ``batch_size`` images at a time, the
seeds running on across batches. "Seed resize from" WxH (-1/0 = off) draws the noise at that size.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import RequestError
from ..plan import Decision, Source, VariationPlan
from ..request import GenerationRequest
from .checks import MAX_SEED

__all__ = ["plan_batch_count", "plan_variation"]


def plan_variation(
    request: GenerationRequest, draw: Callable[[], int], items: list[Decision]
) -> VariationPlan | None:
    """The variation seed and seed resize of ``request`` (None when it asks for neither); ``draw`` is the
    random variation seed used when a strength is given without a seed (A1111's -1)."""
    strength = request.variation_strength
    resize = request.seed_resize_from
    if resize is not None and (resize[0] <= 0 or resize[1] <= 0):
        resize = None  # A1111's -1 (or 0): off
    if (strength is None or strength == 0) and resize is None:
        if request.variation_seed not in (None, -1):
            raise RequestError("--variation-seed needs --variation-strength above 0 to change anything.")
        return None
    strength = float(strength or 0.0)
    if not 0.0 <= strength <= 1.0:
        raise RequestError(f"variation strength must be between 0 and 1, got {strength!r}.")
    seed = request.variation_seed
    if strength and seed in (None, -1):
        seed = draw()
        items.append(
            Decision("variation_seed", seed, Source.RANDOM, "no variation seed given: drawn at random")
        )
    elif strength:
        items.append(Decision("variation_seed", seed, Source.USER, "set by the user"))
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise RequestError(
            f"variation seed must be between 0 and {MAX_SEED} (or -1 for random), got {seed!r}."
        )
    rw, rh = resize or (0, 0)
    if resize is not None:
        if rw % 8 or rh % 8 or rw > 16384 or rh > 16384:
            raise RequestError(f"seed resize from {rw}x{rh}: use multiples of 8 up to 16384.")
        items.append(Decision("seed_resize_from", f"{rw}x{rh}", Source.USER, "noise drawn at this size"))
    return VariationPlan(seed=int(seed or 0), strength=strength, resize_width=int(rw), resize_height=int(rh))


def plan_batch_count(request: GenerationRequest, batch_size: int, items: list[Decision]) -> int:
    """A1111's batch count (n_iter): 1 to 100 batches of ``batch_size``."""
    count = request.batch_count
    if count is None:
        return 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
        raise RequestError(f"batch count must be between 1 and 100, got {count!r}.")
    items.append(Decision("batch_count", count, Source.USER, f"{count} batches of {batch_size}"))
    return count
