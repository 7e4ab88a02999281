"""ControlNets, IP-Adapters and textual-inversion embeddings: names → checked files.

Pickled weights are refused here (never unpickled), single-file ControlNets get their config folder,
IP-Adapter folders are checked for the h94 layout, and a local-looking name that does not exist says
so instead of reaching for the Hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .._assets import portable_path
from ..catalog.records import MODEL_SUFFIXES, ModelKind, ModelRecord, Status
from ..errors import ModelNotFoundError, UnsupportedModelError
from ..plan import EmbeddingUse
from ..prompt.syntax import PromptDocument, find_embeddings
from .checkpoint import PICKLE_SUFFIXES, beside_config_dir, is_hub_id, refuse_pickled_folder
from .known import KnownModels

__all__ = ["adapter_label", "resolve_controlnet", "resolve_embeddings", "resolve_ip_adapter"]


def adapter_label(resolved: str, known: KnownModels | None = None) -> str:
    """The name A1111 shows for an adapter: its catalog name, else the file stem or the folder name."""
    if known is not None:
        record = known.at(resolved)
        if record is not None:
            return record.name
    tail = resolved.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    stem, dot, suffix = tail.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in MODEL_SUFFIXES else tail


def _local(reference: str, known: KnownModels, kind: ModelKind) -> Path | None:
    """An existing path, else the catalogued model of ``kind`` that ``reference`` names, else None."""
    path = Path(reference).expanduser()
    if path.exists():
        return path.resolve()
    record = known.named(reference, kind)
    return Path(record.path) if record is not None else None


def _hub_like(reference: str) -> bool:
    """A Hub id, unless its owner part is a local folder (then it is a local path that does not exist)."""
    return is_hub_id(reference) and not Path(reference.split("/", 1)[0]).expanduser().is_dir()


def resolve_controlnet(reference: str, known: KnownModels) -> tuple[str, str, str | None]:
    """(model, infotext name, config folder of a single file) for a ControlNet folder, file or Hub id."""
    path = _local(reference, known, ModelKind.CONTROLNET)
    if path is None:
        if _hub_like(reference):
            return reference, adapter_label(reference), None
        raise ModelNotFoundError(
            f"No ControlNet at {reference!r}: no such file or folder, nor a ControlNet name in the catalog. "
            "Give a diffusers ControlNet folder, a .safetensors file with its config, or a Hub id (owner/name)."
        )
    label = adapter_label(str(path), known)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"ControlNet folder {path} has no config.json: not a diffusers ControlNet."
            )
        refuse_pickled_folder(path, f"ControlNet {path.name}")
        return portable_path(str(path)), label, None
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UnsupportedModelError(
            f"ControlNet {path.name} is a pickle file, which could run code and is never opened; "
            "use a .safetensors version (`ml-diffusion models convert --allow-pickle` writes one)."
        )
    config = beside_config_dir(path)
    if not (config / "config.json").is_file():
        raise ModelNotFoundError(
            f"ControlNet {path.name} is a single file; place its diffusers config.json in "
            f"{config.name}/ beside it (or use a diffusers ControlNet folder)."
        )
    return portable_path(str(path)), label, portable_path(str(config))


def resolve_ip_adapter(
    reference: str, subfolder: str, weight_name: str, known: KnownModels
) -> tuple[str, str, str]:
    """(folder or Hub id, subfolder, weights file) as diffusers' ``load_ip_adapter`` takes them.

    A local folder must hold ``<subfolder>/<weights>`` and ``<subfolder>/image_encoder/`` (the h94
    layout); a weights file (e.g. from the catalog) must have ``image_encoder/`` beside it.
    """
    path = _local(reference, known, ModelKind.IP_ADAPTER)
    layout = "(<folder>/models/<weights>.safetensors and <folder>/models/image_encoder/)"
    if path is None:
        if _hub_like(reference):
            return reference, subfolder, weight_name
        raise ModelNotFoundError(
            f"No IP-Adapter at {reference!r}: no such folder or file, nor an IP-Adapter name in the "
            f"catalog. Give a local folder in the h94 layout {layout}, or a Hub id (owner/name)."
        )
    if path.is_file():
        folder, subfolder, weight_name = path.parent, "", path.name
    else:
        folder = path
    weights = folder / subfolder / weight_name
    if Path(weight_name).suffix.lower() in PICKLE_SUFFIXES:
        raise UnsupportedModelError(
            f"IP-Adapter weights {weight_name} are a pickle file, which could run code and is never opened; "
            "use the .safetensors version."
        )
    if not weights.is_file():
        raise ModelNotFoundError(
            f"IP-Adapter weights {weights} do not exist; name the weights file with --ip-adapter-weights "
            f"and use the h94 layout {layout}."
        )
    encoder = weights.parent / "image_encoder"
    if not encoder.is_dir():
        raise ModelNotFoundError(
            f"IP-Adapter {weights.name} has no image_encoder/ folder beside it; diffusers needs the h94 "
            f"layout {layout}."
        )
    refuse_pickled_folder(encoder, f"IP-Adapter image encoder {encoder}")
    return portable_path(str(folder)), subfolder, weight_name


def resolve_embeddings(
    documents: Iterable[PromptDocument], records: Iterable[ModelRecord], family: str
) -> tuple[EmbeddingUse, ...]:
    """The catalogued embeddings the prompts name, as A1111 finds them (bare word or ``embedding:name``).

    Embeddings of another model family are ignored (A1111 skips them too); unknown families are allowed.
    The hash is A1111's TI hash (first 12 hex of the sha256) when the catalog knows it.
    """
    usable = {
        r.name: r
        for r in records
        if r.kind is ModelKind.EMBEDDING and r.status is Status.OK and r.family.value in ("unknown", family)
    }
    if not usable:
        return ()
    found: dict[str, EmbeddingUse] = {}
    for document in documents:
        for ref in find_embeddings(document, tuple(usable)):
            record = usable.get(ref.name)
            if record is not None and record.name not in found:
                sha = record.hashes.sha256
                found[record.name] = EmbeddingUse(record.name, record.path, sha[:12] if sha else None)
    return tuple(found.values())
