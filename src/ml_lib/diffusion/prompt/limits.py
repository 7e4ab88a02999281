"""Bounds on the numbers a prompt carries, so that a degenerate prompt is refused instead of rendered black.

- ``MAX_NESTING`` = 32 levels of ``(`` / ``[`` (escaped brackets are text). Each level multiplies attention
  by 1.1 (or divides by it); A1111 prompts use a handful, and 32 already means x21. Unclosed brackets
  count: A1111 applies them to the rest of the prompt.
- ``MAX_ATTENTION_WEIGHT`` = 100: the effective weight of any span (explicit weights times nesting), and
  the weight of an ``AND`` part, must be finite and within -100..100.
- ``MAX_NETWORK_WEIGHT`` = 10: ``<lora:name:te:unet>`` weights must be within -10..10 (slider LoRAs use
  a few units either way; ordinary ones 0..1.5); ``nan``/``inf`` read as unreadable weights.

Each check raises :class:`PromptError` naming the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..errors import PromptError

__all__ = [
    "MAX_ATTENTION_WEIGHT",
    "MAX_NESTING",
    "MAX_NETWORK_WEIGHT",
    "check_attention_weight",
    "check_nesting",
    "check_network_weights",
    "check_part_weight",
]

MAX_NESTING = 32
MAX_ATTENTION_WEIGHT = 100.0
MAX_NETWORK_WEIGHT = 10.0


def _excerpt(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_nesting(depth: int) -> None:
    """PromptError when brackets nest ``depth`` > MAX_NESTING levels deep."""
    if depth > MAX_NESTING:
        raise PromptError(
            f"The prompt nests brackets {depth} deep; A1111 prompts need at most {MAX_NESTING} (each level "
            "multiplies attention by 1.1): remove extra brackets, or write a weight such as (word:1.5)."
        )


def check_attention_weight(weight: float, text: str) -> None:
    """PromptError when ``text`` ends up with a non-finite weight or one beyond ±MAX_ATTENTION_WEIGHT."""
    if not math.isfinite(weight):
        raise PromptError(
            f"The prompt gives {_excerpt(text)!r} a weight that is not a finite number; "
            "use weights such as (word:1.2)."
        )
    if abs(weight) > MAX_ATTENTION_WEIGHT:
        raise PromptError(
            f"The prompt gives {_excerpt(text)!r} an attention weight of {weight:g} (weights multiply through "
            f"nested brackets); keep it within -{MAX_ATTENTION_WEIGHT:g} and {MAX_ATTENTION_WEIGHT:g}, "
            "e.g. (word:1.5)."
        )


def check_part_weight(weight: float, text: str) -> None:
    """PromptError for an ``AND`` part weight (``a cat :0.7 AND …``) out of ±MAX_ATTENTION_WEIGHT."""
    if not math.isfinite(weight) or abs(weight) > MAX_ATTENTION_WEIGHT:
        raise PromptError(
            f"The AND part {_excerpt(text)!r} has weight {weight:g}; keep it within "
            f"-{MAX_ATTENTION_WEIGHT:g} and {MAX_ATTENTION_WEIGHT:g} (usually 0..1)."
        )


def check_network_weights(source: str, weight_texts: Iterable[tuple[str, str]]) -> None:
    """PromptError for a tag weight (``(label, text)`` pairs of the tag written as ``source``) that is a
    finite number beyond ±MAX_NETWORK_WEIGHT.

    A weight that is no finite number (``<lora:x:abc>``, ``nan``, ``inf``) reads as None and is listed in
    the tag's problems; planning refuses it.
    """
    for label, raw in weight_texts:
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value) and abs(value) > MAX_NETWORK_WEIGHT:
            raise PromptError(
                f"{source}: {label} weight {raw} must be a number within -{MAX_NETWORK_WEIGHT:g} and "
                f"{MAX_NETWORK_WEIGHT:g}; LoRA weights are usually 0..1.5."
            )
