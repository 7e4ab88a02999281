"""Store a request's input images in the content-addressed input store and resolve their models.

The plan then refers to each image by path + sha256 (+ size), so it stays JSON and reproducible.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog.records import ModelKind
from .catalog.walk import MODEL_SUFFIXES
from .plan import ImageRef
from .planning.inputs import InputRefs
from .request import GenerationRequest

if TYPE_CHECKING:
    from .catalog.catalog import Catalog

__all__ = ["model_label", "model_reference", "store_inputs"]


def model_reference(model: str, catalog: Catalog | None = None, kind: ModelKind | None = None) -> str:
    """An existing local path made absolute; else a catalogued model of ``kind`` by name (A1111 rules);
    anything else (a Hub id) kept as given."""
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    if catalog is not None and kind is not None:
        record = catalog.resolve_name(model, (kind,))
        if record is not None:
            return record.path
    return model


def model_label(resolved: str, catalog: Catalog | None = None) -> str:
    """The name A1111 shows for an adapter: its catalog name, else the file stem or the folder name."""
    if catalog is not None:
        record = catalog.at(resolved)
        if record is not None:
            return record.name
    tail = resolved.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    stem, dot, suffix = tail.rpartition(".")
    return stem if dot and f".{suffix.lower()}" in MODEL_SUFFIXES else tail


def store_inputs(request: GenerationRequest, root: Path, catalog: Catalog | None = None) -> InputRefs:
    """Load, check and store every input image of ``request`` under ``root``; resolve adapter models
    (paths, catalog names, Hub ids)."""
    if (
        request.init_image is None
        and request.mask is None
        and not request.controls
        and not request.ip_adapters
    ):
        return InputRefs()
    from .imaging.intake import load_image, load_mask
    from .imaging.store import InputStore

    store = InputStore(root)

    def keep(image: Any) -> ImageRef:
        stored = store.put(image)
        return ImageRef(str(store.path_of(stored)), stored.sha256, stored.width, stored.height)

    init = load_image(request.init_image) if request.init_image is not None else None
    mask = None
    if request.mask is not None:
        size = (init.width, init.height) if init is not None else None
        mask = keep(load_mask(request.mask, size)) if size else keep(load_image(request.mask))
    control_models = tuple(model_reference(c.model, catalog, ModelKind.CONTROLNET) for c in request.controls)
    return InputRefs(
        init_image=keep(init) if init is not None else None,
        mask=mask,
        control_models=control_models,
        control_images=tuple(keep(load_image(c.image)) for c in request.controls),
        control_names=tuple(model_label(m, catalog) for m in control_models),
        ip_models=tuple(model_reference(u.model, catalog, ModelKind.IP_ADAPTER) for u in request.ip_adapters),
        ip_images=tuple(keep(load_image(u.image)) for u in request.ip_adapters),
    )
