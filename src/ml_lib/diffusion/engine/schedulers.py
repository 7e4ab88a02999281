"""Build the diffusers scheduler for a plan's sampler, schedule and the model's prediction type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import diffusers

from ..samplers import SamplerChoice, scheduler_recipe
from .discard_sigma import discarding_class

__all__ = ["make_scheduler"]


def make_scheduler(choice: SamplerChoice, base_config: Mapping[str, Any], prediction_type: str) -> Any:
    """A new scheduler for ``choice`` that keeps the model's training schedule from ``base_config``
    (DPM2, DPM2 a and DPM++ 3M SDE on A1111's levels: :mod:`.discard_sigma`)."""
    recipe = scheduler_recipe(choice)
    cls = (
        discarding_class(recipe.class_name)
        if recipe.discard_penultimate_sigma
        else getattr(diffusers, recipe.class_name)
    )
    config = dict(base_config)
    # Spacing/sigma options of the model's own scheduler must not leak into the chosen schedule.
    for key in (
        "use_karras_sigmas",
        "use_exponential_sigmas",
        "use_beta_sigmas",
        "algorithm_type",
        "solver_order",
        "final_sigmas_type",
        "timestep_spacing",
        "skip_prk_steps",
    ):
        config.pop(key, None)
    config["prediction_type"] = prediction_type
    config["timestep_spacing"] = (
        "leading" if choice.sampler in ("DDIM", "PLMS", "DDPM", "LCM", "TCD") else "linspace"
    )
    config.update(dict(recipe.kwargs))
    return cls.from_config(config)
