"""Names of a request's second passes → files: the SDXL refiner (a path, a catalog name, or ``auto``), the
hires pass's checkpoint (A1111's "Hires checkpoint", a path or catalog name of the base's family) and a
learned hires upscaler (a ``.safetensors`` model file, or its catalog name)."""

from __future__ import annotations

from pathlib import Path

from .._assets import portable_path
from ..catalog.families import Family
from ..catalog.hashing import HashCache
from ..catalog.records import PICKLE_SUFFIXES, ModelKind
from ..errors import ModelFamilyMismatchError, ModelNotFoundError, RequestError, UnsupportedModelError
from ..plan import Decision, ModelRef, Source
from ..planning.hires import is_builtin_upscaler
from ..request import GenerationRequest
from .checkpoint import component_sizes, resolve_model
from .known import KnownModels

__all__ = ["resolve_hires_checkpoint", "resolve_refiner", "resolve_upscaler"]

_OFF = ("", "none")
#: What A1111's UI (and its infotext reader, for a missing key) calls the first pass's checkpoint.
SAME_CHECKPOINT = "use same checkpoint"


def resolve_refiner(
    request: GenerationRequest, base: ModelRef, known: KnownModels, hashes: HashCache
) -> tuple[ModelRef | None, Decision | None]:
    """The refiner ``request`` names (None when it names none) and, for ``auto``, why it was picked."""
    name = (request.refiner or "").strip()
    if name.casefold() in _OFF:
        return None, None
    if name.casefold() != "auto":
        return resolve_model(name, hashes=hashes, lookup=known.named), None
    if base.family != Family.SDXL.value:
        raise RequestError(
            f"--refiner auto pairs a refiner with an SDXL base; {base.name or base.reference} is {base.family}."
        )
    found = sorted(
        (r for r in known.usable((ModelKind.CHECKPOINT,)) if r.family is Family.SDXL_REFINER),
        key=lambda r: (r.name.casefold(), r.path),
    )
    if not found:
        raise ModelNotFoundError(
            "--refiner auto found no SDXL refiner in the catalog; add one with "
            "`ml-diffusion models scan --root DIR`, or name a refiner file."
        )
    record = found[0]
    model = resolve_model(record.path, hashes=hashes)
    others = f" (first of {len(found)} by name)" if len(found) > 1 else ""
    reason = f"--refiner auto: the catalogued SDXL refiner for an SDXL base{others}"
    return model, Decision("refiner", record.name, Source.CATALOG, reason)


def resolve_upscaler(
    request: GenerationRequest, known: KnownModels, hashes: HashCache
) -> tuple[str, str] | None:
    """(path, short hash) of a learned hires upscaler; None for a latent mode or built-in image upscaler."""
    ref = (request.hires_upscaler or "").strip()
    if not ref or is_builtin_upscaler(ref):
        return None
    path = Path(ref).expanduser()
    if not path.is_file():
        record = known.named(ref, ModelKind.UNKNOWN)
        if record is None:
            raise ModelNotFoundError(
                f"Hires upscaler {ref!r} is not a latent mode, Lanczos, Nearest, an existing file, nor a "
                "catalogued model; give a .safetensors upscaler (ESRGAN, SwinIR …) by path."
            )
        path = Path(record.path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsupportedModelError(
            f"{path} is a pickle file, which can run code and is not loaded; use a .safetensors upscaler "
            "(most ESRGAN models have one, or convert it)."
        )
    if path.suffix.lower() != ".safetensors":
        raise UnsupportedModelError(f"{path}: hires upscaler models must be .safetensors files.")
    return portable_path(str(path.resolve())), hashes.sha256(path)[:10]


def resolve_hires_checkpoint(
    request: GenerationRequest, base: ModelRef, known: KnownModels, hashes: HashCache
) -> tuple[ModelRef, int | None] | None:
    """(the hires pass's checkpoint, its parameter count or None when unknown) that ``request`` names,
    resolved like the main model; None when it names none (or A1111's "Use same checkpoint").

    ModelFamilyMismatchError when it is not of ``base``'s family: the second pass continues the first
    pass's latents (the same VAE latent space) with the request's LoRAs and embeddings, which are checked
    for that family."""
    name = (request.hires_checkpoint or "").strip()
    if name.casefold() in (*_OFF, SAME_CHECKPOINT):
        return None
    model = resolve_model(name, hashes=hashes, lookup=known.named)
    if model.family != base.family:
        raise ModelFamilyMismatchError(
            f"Hires checkpoint {model.name or model.reference} is a {model.family} model but the first pass "
            f"runs {base.name or base.reference}, a {base.family} model; the hires pass continues its "
            f"latents with its LoRAs, so choose a {base.family} checkpoint."
        )
    sizes = component_sizes(model)
    parts = (sizes.unet, sizes.text_encoder, sizes.vae)
    return model, (None if sizes.unet is None else sum(p or 0 for p in parts))
