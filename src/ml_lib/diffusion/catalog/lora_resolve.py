"""Resolve a user's LoRA reference (``--lora PATH[:w]``) to a LoraUse, from the header alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelNotFoundError, UnsupportedModelError
from ..plan import LoraUse
from .hashing import ADDNET, HashCache
from .header import read_header
from .records import ModelKind

if TYPE_CHECKING:
    from .catalog import Catalog

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


def resolve_lora(
    reference: str,
    unet_weight: float = 1.0,
    te_weight: float | None = None,
    *,
    catalog: Catalog | None = None,
    hashes: HashCache | None = None,
) -> LoraUse:
    """A LoraUse for a LoRA path or catalog name (A1111 rules); te weight defaults to the UNet weight.

    With ``hashes`` the LoRA carries A1111's 12-hex addnet hash (for "Lora hashes" in the infotext).
    """
    path = Path(reference).expanduser()
    if not path.is_file() and catalog is not None:
        record = catalog.resolve_name(reference, (ModelKind.LORA,))
        if record is not None:
            path = Path(record.path)
    if not path.is_file():
        raise ModelNotFoundError(
            f"No LoRA {reference!r}: not a file, nor a LoRA name in the catalog. "
            "Give the path of a .safetensors LoRA, or scan its folder with `ml-diffusion models scan`."
        )
    if path.suffix.lower() != ".safetensors":
        raise UnsupportedModelError(f"{path} is not a .safetensors file; pickled LoRAs are not loaded.")
    header = read_header(path)
    if not any("lora" in k or "hada_" in k or "lokr_" in k for k in header.tensors):
        raise UnsupportedModelError(f"{path} holds no LoRA weights (no 'lora' keys); is it a LoRA?")
    digest = hashes.digests(path, (ADDNET,)).addnet_short if hashes is not None else None
    return LoraUse(
        name=path.stem,
        path=str(path.resolve()),
        unet_weight=float(unet_weight),
        te_weight=float(unet_weight if te_weight is None else te_weight),
        hash=digest,
    )
