"""LoRAs named in the prompt (``<lora:name:w>``, ``<lora:name:te:unet>``, ``<lyco:…>``) as requests."""

from __future__ import annotations

from ..errors import RequestError
from ..prompt.syntax import parse_prompt
from ..request import LoraRequest

__all__ = ["merge_lora_requests"]


def merge_lora_requests(prompt: str, explicit: tuple[LoraRequest, ...]) -> tuple[LoraRequest, ...]:
    """The prompt's LoRA tags after the explicitly requested LoRAs; a tag naming one of those is dropped.

    An unreadable tag weight (``<lora:x:abc>``) is a RequestError, as A1111 also refuses it.
    """
    document = parse_prompt(prompt)
    out = list(explicit)
    seen = {r.ref.lower() for r in explicit}
    for ref in document.loras:
        if ref.name.lower() in seen:
            continue
        if ref.te_weight is None or ref.unet_weight is None:
            raise RequestError(
                f"Cannot read the weights of <{ref.kind}:{ref.name}:…> in the prompt; use numbers."
            )
        out.append(LoraRequest(ref.name, ref.unet_weight, ref.te_weight))
        seen.add(ref.name.lower())
    return tuple(out)
