"""LoRAs on a loaded pipeline: load once as named adapters, weight per part, fuse, restore exactly.

Every LoRA set is fused into the weights after loading, so a given set always computes with the same
(fused) weights: generations reproduce whatever ran before. Before fusing, the original weights of the
affected layers are kept on the CPU; changing the set or removing every LoRA copies them back, so the
base model is restored bit for bit. Text-encoder and UNet weights are set separately
(A1111's ``<lora:name:te:unet>``) through ``set_adapters``, never through ``cross_attention_kwargs``
scale, which diffusers leaks into later loads (FACTS).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..catalog.header import read_header
from ..errors import ModelUnreadableError, UnsupportedModelError
from ..plan import LoraUse
from ._quiet import no_progress_bars

__all__ = ["apply_loras", "lycoris_variant"]

log = logging.getLogger(__name__)

_LYCORIS = (("hada_w1_a", "LoHa"), ("lokr_w1", "LoKr"), ("oft_blocks", "OFT"), ("oft_diag", "BOFT"))
_UNET_BLOCK_STYLE = re.compile(r"^lora_unet_(input|output|middle)_blocks?_")


@dataclass(slots=True)
class _LoraState:
    """What is loaded into one pipeline (kept on the pipeline object)."""

    loaded: dict[str, str] = field(default_factory=dict)  # adapter name -> path
    active: tuple[tuple[str, float, float], ...] = ()
    backup: dict[int, tuple[torch.nn.Module, torch.Tensor]] = field(default_factory=dict)


def lycoris_variant(keys: set[str] | frozenset[str] | Any) -> str | None:
    """The LyCORIS variant diffusers cannot load (LoHa, LoKr, OFT…), from tensor names; None if plain LoRA."""
    for key in keys:
        for marker, name in _LYCORIS:
            if marker in key:
                return name
    return None


def _adapter_name(path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)[:40]
    return f"{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"


def _components(pipe: Any, adapter: str | None = None) -> list[str]:
    """LoRA-capable components of ``pipe`` (those holding ``adapter`` / any adapter when given / None)."""
    out = []
    for name in ("unet", "text_encoder", "text_encoder_2"):
        model = getattr(pipe, name, None)
        if model is None:
            continue
        configs = getattr(model, "peft_config", None) or {}
        if adapter is None or adapter in configs or (adapter == "*" and configs):
            out.append(name)
    return out


def _tuner_layers(pipe: Any) -> list[torch.nn.Module]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [
        m for c in _components(pipe, "*") for m in getattr(pipe, c).modules() if isinstance(m, BaseTunerLayer)
    ]


def _load(pipe: Any, lora: LoraUse, name: str) -> None:
    header = read_header(lora.path)
    variant = lycoris_variant(header.tensors)
    if variant:
        raise UnsupportedModelError(
            f"{lora.name} is a LyCORIS {variant}, which diffusers cannot load; use a LoRA/LoCon version of it."
        )
    kwargs: dict[str, Any] = {"adapter_name": name}
    if any(_UNET_BLOCK_STYLE.match(k) for k in header.tensors):
        kwargs["unet_config"] = pipe.unet.config  # SD1.x kohya files named after LDM blocks
    pipe._lora_scale = 1.0  # diffusers bug: a previous call's scale would scale text-encoder loads
    try:
        with no_progress_bars():
            pipe.load_lora_weights(lora.path, **kwargs)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnreadableError(
            f"Cannot load LoRA {lora.name} ({lora.path}) into this {type(pipe).__name__}: {exc}. "
            "Check that it was trained for this model family."
        ) from exc


def _restore(pipe: Any, state: _LoraState) -> None:
    if not state.backup:
        return
    pipe.unfuse_lora(components=_components(pipe, "*"))
    with torch.no_grad():
        for module, weight in state.backup.values():
            base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
            base.weight.copy_(weight)
    state.backup.clear()


def _fuse(pipe: Any, state: _LoraState) -> None:
    for module in _tuner_layers(pipe):
        base = module.get_base_layer()
        state.backup[id(module)] = (module, base.weight.detach().to("cpu", copy=True))
    pipe.fuse_lora(components=_components(pipe, "*"), lora_scale=1.0)


def apply_loras(pipe: Any, loras: tuple[LoraUse, ...]) -> None:
    """Make ``pipe`` compute with exactly ``loras`` (none: the base model, bit for bit)."""
    state: _LoraState = getattr(pipe, "_ml_lora_state", None) or _LoraState()
    pipe._ml_lora_state = state
    wanted = {_adapter_name(lora.path): lora for lora in loras}
    key = tuple((name, lora.unet_weight, lora.te_weight) for name, lora in wanted.items())
    if key == state.active:
        return
    _restore(pipe, state)
    if not wanted:
        if state.loaded:
            pipe.unload_lora_weights()
            state.loaded.clear()
        state.active = ()
        return
    for name in [n for n in state.loaded if n not in wanted]:
        pipe.delete_adapters(name)
        del state.loaded[name]
    for name, lora in wanted.items():
        if name not in state.loaded:
            log.info("loading LoRA %s as adapter %s", lora.path, name)
            _load(pipe, lora, name)
            state.loaded[name] = lora.path
    weights = [
        {c: (lora.unet_weight if c == "unet" else lora.te_weight) for c in _components(pipe, name)}
        for name, lora in wanted.items()
    ]
    pipe.set_adapters(list(wanted), adapter_weights=weights)
    _fuse(pipe, state)
    state.active = key
