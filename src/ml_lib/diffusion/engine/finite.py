"""Refuse an image whose numbers came out NaN or infinite: it would be saved as a black (or noise) image.

Checked twice per run, on the denoised latents and on the decoded pixels before they become PIL
images (where NaN silently turns into 0, a black image). The error names the plan's likely causes.
"""

from __future__ import annotations

import torch

from ..errors import NonFiniteError
from ..plan import GenerationPlan

__all__ = ["check_finite"]


def check_finite(tensor: torch.Tensor, stage: str, plan: GenerationPlan) -> None:
    """Raise NonFiniteError (a GenerationError) when ``tensor`` (the ``stage`` of ``plan``: "latents",
    "decoded image") holds a NaN or an infinity."""
    if bool(torch.isfinite(tensor).all()):
        return
    raise NonFiniteError(
        f"The {stage} came out as NaN or infinite numbers, which would save as a black image, so nothing "
        f"was saved. Likely cause: {'; or '.join(_causes(plan))}.",
        stage,
    )


def _causes(plan: GenerationPlan) -> list[str]:
    causes = []
    if plan.loras:
        weights = ", ".join(f"{u.name} {u.unet_weight:g}/{u.te_weight:g}" for u in plan.loras)
        causes.append(f"LoRA weights too strong or a broken LoRA ({weights}): lower them or leave one out")
    if plan.dtype != "float32":
        causes.append(
            f"{plan.dtype} overflow in the model or its VAE: run in float32 or use an fp16-fixed VAE"
        )
    causes.append(
        f"a broken model file ({plan.model.name} may hold NaN or infinite weights): "
        "check it with another tool or download it again"
    )
    return causes
