"""LoRAs: ``--lora`` values and the prompt's ``<lora:…>`` tags → checked :class:`LoraUse` records.

A LoRA is refused here, before any pipeline loads, when it is not a safetensors file, holds no LoRA
weights, is a LyCORIS variant diffusers cannot load (LoHa, LoKr, OFT …), was trained for another model
family, or is asked for with a weight that is not a sane finite number.
"""

from __future__ import annotations

import math
from pathlib import Path

from .._assets import portable_path
from ..catalog.families import Family
from ..catalog.hashing import ADDNET, HashCache
from ..catalog.header import read_header
from ..catalog.lora import analyse_lora
from ..catalog.records import ModelKind
from ..errors import ModelNotFoundError, RequestError, UnsupportedModelError
from ..plan import LoraUse
from ..prompt.limits import MAX_NETWORK_WEIGHT
from ..prompt.syntax import PromptDocument
from ..request import LoraRequest
from .known import Lookup

__all__ = ["UNLOADABLE_NETWORKS", "lora_requests", "parse_lora_arg", "resolve_lora"]

#: LyCORIS networks diffusers' ``load_lora_weights`` cannot load.
UNLOADABLE_NETWORKS = frozenset({"LoHa", "LoKr", "OFT", "BOFT", "IA3", "GLoRA"})


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


def lora_requests(document: PromptDocument, explicit: tuple[LoraRequest, ...]) -> tuple[LoraRequest, ...]:
    """The prompt's LoRA tags after the explicitly requested LoRAs; a tag naming one of those is dropped.

    An unreadable tag weight (``<lora:x:abc>``) is a RequestError, as A1111 also refuses it.
    """
    out = list(explicit)
    seen = {r.ref.lower() for r in explicit}
    for ref in document.loras:
        if ref.name.lower() in seen:
            continue
        if ref.te_weight is None or ref.unet_weight is None:
            tag = ref.source if len(ref.source) <= 80 else ref.source[:79] + "…"
            raise RequestError(
                f"Cannot read the weights of {tag} in the prompt; use finite numbers such as 0.8."
            )
        out.append(LoraRequest(ref.name, ref.unet_weight, ref.te_weight))
        seen.add(ref.name.lower())
    return tuple(out)


def _check_weight(reference: str, weight: float) -> None:
    if not math.isfinite(weight) or abs(weight) > MAX_NETWORK_WEIGHT:
        raise RequestError(
            f"LoRA {reference!r} weight {weight!r} is not usable; give a number between "
            f"-{MAX_NETWORK_WEIGHT:g} and {MAX_NETWORK_WEIGHT:g} (A1111 users mostly use 0.3 to 1.2)."
        )


def resolve_lora(
    request: LoraRequest,
    family: Family,
    *,
    lookup: Lookup | None = None,
    hashes: HashCache | None = None,
) -> LoraUse:
    """A LoraUse for a LoRA path or catalog name (A1111 rules) to apply to a ``family`` model.

    The te weight defaults to the UNet weight. With ``hashes`` the LoRA carries A1111's 12-hex addnet
    hash (for "Lora hashes" in the infotext).
    """
    te = request.weight if request.te_weight is None else request.te_weight
    for weight in (request.weight, te):
        _check_weight(request.ref, weight)
    path = Path(request.ref).expanduser()
    if not path.is_file() and lookup is not None:
        record = lookup(request.ref, ModelKind.LORA)
        if record is not None:
            path = Path(record.path)
    if not path.is_file():
        raise ModelNotFoundError(
            f"No LoRA {request.ref!r}: not a file, nor a LoRA name in the catalog. "
            "Give the path of a .safetensors LoRA, or scan its folder with `ml-diffusion models scan`."
        )
    if path.suffix.lower() != ".safetensors":
        raise UnsupportedModelError(f"{path} is not a .safetensors file; pickled LoRAs are not loaded.")
    info = analyse_lora(read_header(path))
    if info is None or info.lora is None:
        raise UnsupportedModelError(f"{path} holds no LoRA weights (no 'lora' keys); is it a LoRA?")
    if info.lora.network in UNLOADABLE_NETWORKS:
        raise UnsupportedModelError(
            f"{path.stem} is a LyCORIS {info.lora.network}, which diffusers cannot load; "
            "use a LoRA/LoCon version of it."
        )
    if info.family not in (Family.UNKNOWN, family):
        raise UnsupportedModelError(
            f"LoRA {path.stem} is for {info.family.value} models ({info.reason}) and cannot apply to this "
            f"{family.value} checkpoint; choose a LoRA trained for {family.value}."
        )
    digest = hashes.digests(path, (ADDNET,)).addnet_short if hashes is not None else None
    return LoraUse(
        name=path.stem,
        path=portable_path(str(path.resolve())),
        unet_weight=float(request.weight),
        te_weight=float(te),
        hash=digest,
    )
