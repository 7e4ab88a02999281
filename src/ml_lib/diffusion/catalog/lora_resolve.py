"""Resolve a user's LoRA reference (``--lora PATH[:w]``) to a LoraUse, from the header alone."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotFoundError, UnsupportedModelError
from ..plan import LoraUse
from .header import read_header

__all__ = ["parse_lora_arg", "resolve_lora"]


def parse_lora_arg(text: str) -> tuple[str, float, float | None]:
    """``NAME``, ``NAME:w`` or A1111's ``NAME:te:unet`` → (reference, unet weight, te weight or None).

    Numbers are taken from the right, so paths containing ``:`` keep working.
    """
    parts = text.split(":")
    numbers: list[float] = []
    while len(parts) > 1 and len(numbers) < 2:
        try:
            numbers.insert(0, float(parts[-1]))
        except ValueError:
            break
        parts.pop()
    ref = ":".join(parts)
    if not numbers:
        return ref, 1.0, None
    if len(numbers) == 1:
        return ref, numbers[0], None
    te, unet = numbers
    return ref, unet, te


def resolve_lora(reference: str, unet_weight: float = 1.0, te_weight: float | None = None) -> LoraUse:
    """A LoraUse for a LoRA file path; te weight defaults to the UNet weight as in A1111."""
    path = Path(reference).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"No LoRA file at {reference!r}; give the path of a .safetensors LoRA.")
    if path.suffix.lower() != ".safetensors":
        raise UnsupportedModelError(f"{path} is not a .safetensors file; pickled LoRAs are not loaded.")
    header = read_header(path)
    if not any("lora" in k or "hada_" in k or "lokr_" in k for k in header.tensors):
        raise UnsupportedModelError(f"{path} holds no LoRA weights (no 'lora' keys); is it a LoRA?")
    return LoraUse(
        name=path.stem,
        path=str(path.resolve()),
        unet_weight=float(unet_weight),
        te_weight=float(unet_weight if te_weight is None else te_weight),
    )
