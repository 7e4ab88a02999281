"""IP-Adapters on a loaded pipeline: loaded once per set, scales applied, image embeddings cached by hash."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelNotFoundError, ModelUnreadableError, OfflineError
from ..plan import IPAdapterUse
from ._quiet import no_progress_bars

__all__ = ["apply_ip_adapters"]

log = logging.getLogger(__name__)


def _location(use: IPAdapterUse) -> tuple[str, str, str]:
    """(folder, subfolder, weights file) for diffusers; a weights file (e.g. from the catalog) is read from
    its own folder, which must hold ``image_encoder/`` (the h94 layout's ``models/`` folder)."""
    path = Path(use.model)
    if not path.is_file():
        return use.model, use.subfolder, use.weight_name
    if not (path.parent / "image_encoder").is_dir():
        raise ModelNotFoundError(
            f"IP-Adapter {path.name} has no image_encoder/ folder beside it; diffusers needs the h94 layout "
            "(<folder>/models/<weights>.safetensors and <folder>/models/image_encoder/)."
        )
    return str(path.parent), "", path.name


def _load(base: Any, uses: tuple[IPAdapterUse, ...]) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    folders, subfolders, weights = zip(*(_location(u) for u in uses), strict=True)
    try:
        with no_progress_bars():
            base.load_ip_adapter(
                list(folders),
                subfolder=list(subfolders),
                weight_name=list(weights),
                local_files_only=all(Path(f).exists() for f in folders),  # Hub ids download when online
            )
    except LocalEntryNotFoundError as exc:
        raise OfflineError(
            f"IP-Adapter files are not local ({exc}); give a local folder in the h94 layout "
            "(<folder>/models/<weights>.safetensors and <folder>/models/image_encoder/)."
        ) from exc
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnreadableError(f"Cannot load IP-Adapter(s) {[u.model for u in uses]}: {exc}") from exc


def apply_ip_adapters(
    base: Any, uses: tuple[IPAdapterUse, ...], images: tuple[Any, ...], *, batch: int, cfg: bool
) -> dict[str, Any]:
    """Load/unload adapters to match ``uses``; the call kwargs (precomputed image embeddings) for the pipeline."""
    loaded = base.__dict__.get("_ml_ip_loaded", ())
    wanted = tuple((u.model, u.subfolder, u.weight_name) for u in uses)
    if loaded != wanted:
        if loaded:
            base.unload_ip_adapter()
        if wanted:
            log.info("loading IP-Adapter(s) %s", [u.model for u in uses])
            _load(base, uses)
        base._ml_ip_loaded = wanted
        base._ml_ip_embeds = {}
    if not uses:
        return {}
    base.set_ip_adapter_scale([u.scale_config() for u in uses])
    key = (tuple(u.image.sha256 for u in uses), batch, cfg)
    cache: dict[Any, Any] = base._ml_ip_embeds
    if key not in cache:
        with torch.inference_mode():
            cache[key] = base.prepare_ip_adapter_image_embeds(
                ip_adapter_image=list(images),
                ip_adapter_image_embeds=None,
                device=base._execution_device,
                num_images_per_prompt=batch,
                do_classifier_free_guidance=cfg,
            )
    return {"ip_adapter_image_embeds": cache[key]}
