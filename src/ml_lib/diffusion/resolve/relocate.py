"""A plan's model found again when the file it names is gone (moved, another machine): by its hash in the
catalog, as A1111 does with the AutoV2 hash. Built-ins need no search: plans name them ``builtin:…``."""

from __future__ import annotations

import logging
from pathlib import Path

from .._assets import local_path
from ..catalog.hashing import HashCache
from ..catalog.records import ModelKind
from ..errors import ModelNotFoundError
from ..plan import ModelFormat, ModelRef
from .checkpoint import resolve_model
from .known import KnownModels

__all__ = ["relocate_model"]

log = logging.getLogger(__name__)


def relocate_model(model: ModelRef, known: KnownModels, hashes: HashCache) -> ModelRef:
    """``model`` itself when its file is there (or it is a Hub model); else the catalogued checkpoint with the
    same hash, resolved afresh. ModelNotFoundError says how to make it findable when there is none."""
    if model.format is ModelFormat.HUB or Path(local_path(model.reference)).exists():
        return model
    if not model.hash:
        raise ModelNotFoundError(
            f"The model {model.reference} is gone and the plan has no hash to find it by; "
            "give the file back at that path."
        )
    record = known.named(model.hash, ModelKind.CHECKPOINT)  # A1111's rule: a hash is a name too
    if record is None:
        raise ModelNotFoundError(
            f"The model {model.reference} is gone and no catalogued checkpoint has its hash {model.hash}; "
            "scan the folder that holds it (`ml-diffusion models scan --root DIR`) and hash it "
            "(`ml-diffusion models hash`), or give the file back."
        )
    config = model.config_dir if model.config_dir and Path(local_path(model.config_dir)).is_dir() else None
    found = resolve_model(record.path, config_dir=config, hashes=hashes)
    if found.hash != model.hash:
        raise ModelNotFoundError(
            f"The model {model.reference} is gone; {record.path} is catalogued with its hash {model.hash} "
            f"but now hashes to {found.hash}; hash the catalog again (`ml-diffusion models hash`)."
        )
    log.warning("%s is gone: using %s, which has the same hash %s", model.reference, record.path, model.hash)
    return found
