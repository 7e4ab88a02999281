"""IP-Adapters on a loaded pipeline: loaded once per set, scales applied, image embeddings cached by hash."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._assets import local_path
from ..errors import ModelUnreadableError, OfflineError
from ..plan import IPAdapterUse
from ._quiet import no_progress_bars

__all__ = ["IPAdapterState", "apply_ip_adapters"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IPAdapterState:
    """The IP-Adapters loaded into one pipeline and the image embeddings computed with them."""

    loaded: tuple[tuple[str, str, str], ...] = ()  # (folder, subfolder, weights) per adapter
    embeds: dict[Any, Any] = field(default_factory=dict)


def _load(base: Any, uses: tuple[IPAdapterUse, ...]) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    folders = [local_path(u.model) for u in uses]
    try:
        with no_progress_bars():
            base.load_ip_adapter(
                folders,
                subfolder=[u.subfolder for u in uses],
                weight_name=[u.weight_name for u in uses],
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
    base: Any,
    state: IPAdapterState,
    uses: tuple[IPAdapterUse, ...],
    images: tuple[Any, ...],
    *,
    batch: int,
    cfg: bool,
) -> dict[str, Any]:
    """Load/unload adapters to match ``uses`` (``state`` is the pipeline's record, updated here); the call
    kwargs (precomputed image embeddings) for the pipeline."""
    wanted = tuple((u.model, u.subfolder, u.weight_name) for u in uses)
    if state.loaded != wanted:
        if state.loaded:
            base.unload_ip_adapter()
            state.loaded = ()
        state.embeds.clear()
        if wanted:
            log.info("loading IP-Adapter(s) %s", [u.model for u in uses])
            _load(base, uses)
            state.loaded = wanted
    if not uses:
        return {}
    base.set_ip_adapter_scale([u.scale_config() for u in uses])
    key = (tuple(u.image.sha256 for u in uses), batch, cfg)
    cache = state.embeds
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
