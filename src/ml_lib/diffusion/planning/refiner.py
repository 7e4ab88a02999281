"""The SDXL refiner hand-off as A1111 plans it (pure): which refiner, and where it takes over.

A1111 writes ``Refiner: <checkpoint> [<short hash>]`` and ``Refiner switch at: 0.8``; it switches when
``(999 - t) / 1000`` reaches the switch point, which is diffusers' ``denoising_end`` on the base and
``denoising_start`` on the refiner (timesteps below ``round(1000 * (1 - switch))`` go to the refiner).
"""

from __future__ import annotations

from ..catalog.families import Family
from ..errors import RequestError
from ..plan import Decision, ModelRef, RefinerPlan, Source
from ..request import GenerationRequest

__all__ = ["DEFAULT_SWITCH", "REFINER_FAMILIES", "plan_refiner"]

#: A1111's default "Refiner switch at".
DEFAULT_SWITCH = 0.8
#: What may refine an SDXL base: the refiner, or another SDXL base (A1111 allows any checkpoint).
REFINER_FAMILIES = frozenset({Family.SDXL_REFINER.value, Family.SDXL.value})


def plan_refiner(
    request: GenerationRequest,
    base: ModelRef,
    refiner: ModelRef | None,
    decision: Decision | None,
    items: list[Decision],
) -> RefinerPlan | None:
    """The refiner of a plan whose model is ``base`` (None without one); ``decision`` is the resolve step's
    when it picked the refiner from the catalog."""
    if refiner is None:
        if request.refiner_switch is not None:
            raise RequestError("--refiner-switch needs --refiner (a refiner name, path or 'auto').")
        return None
    if base.family != Family.SDXL.value:
        raise RequestError(
            f"The refiner hands over SDXL latents; {base.name or base.reference} is {base.family}. "
            "Use an SDXL base model, or drop --refiner."
        )
    if refiner.family not in REFINER_FAMILIES:
        raise RequestError(
            f"{refiner.name or refiner.reference} is {refiner.family}, not an SDXL refiner or base; "
            "give an SDXL refiner checkpoint."
        )
    switch = DEFAULT_SWITCH if request.refiner_switch is None else float(request.refiner_switch)
    if not 0.0 < switch < 1.0:
        raise RequestError(f"refiner switch must be between 0 and 1 (exclusive), got {switch!r}.")
    name = refiner.name or refiner.reference
    items.append(decision or Decision("refiner", name, Source.USER, "set by the user"))
    if request.refiner_switch is None:
        items.append(Decision("refiner_switch", switch, Source.PROFILE, "A1111's default switch point"))
    else:
        items.append(Decision("refiner_switch", switch, Source.USER, "set by the user"))
    return RefinerPlan(model=refiner, switch_at=switch)
