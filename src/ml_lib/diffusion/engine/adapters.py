"""LoRAs on a loaded pipeline: load once as named adapters, weight per part, fuse, restore exactly.

Every LoRA set is fused into the weights after loading, so a given set always computes with the same
(fused) weights: generations reproduce whatever ran before. Before fusing, the original weights of the
affected layers are kept on the CPU; changing the set or removing every LoRA copies them back, so the
base model is restored bit for bit. Weights stored in fp8 (the fp8 memory strategies' UNet) are not fused
into: with 3 mantissa bits most of a LoRA's delta would round away, so there the LoRA computes beside the
base layer (peft's unmerged forward, in fp32), and nothing needs restoring. Text-encoder and UNet weights
are set separately (A1111's ``<lora:name:te:unet>``) through ``set_adapters``, never through ``cross_attention_kwargs``
scale, which diffusers leaks into later loads (FACTS): the engine never passes a LoRA scale, so
diffusers' ``lora_scale`` stays 1 and text-encoder loads are unscaled. Which files can load was checked
by the resolve step; here SD1.x kohya files named after LDM blocks are converted by passing the UNet
config, which diffusers ignores for files in other layouts.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from .._assets import local_path
from ..errors import ModelUnreadableError
from ..plan import LoraUse
from ._quiet import no_progress_bars

if TYPE_CHECKING:
    from peft.tuners.tuners_utils import BaseTunerLayer

__all__ = ["LoraState", "apply_loras"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoraState:
    """The LoRAs loaded into one pipeline: adapter names, the fused set, the base weights it replaced."""

    loaded: dict[str, str] = field(default_factory=dict)  # adapter name -> path
    active: tuple[tuple[str, float, float], ...] = ()
    backup: dict[int, tuple[BaseTunerLayer, torch.Tensor]] = field(default_factory=dict)


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


def _fusable(pipe: Any) -> list[str]:
    """Components holding adapters whose weights are not stored in fp8 (see the module docstring)."""
    fp8 = (torch.float8_e4m3fn, torch.float8_e5m2)
    return [
        c for c in _components(pipe, "*") if not any(p.dtype in fp8 for p in getattr(pipe, c).parameters())
    ]


def _tuner_layers(pipe: Any, components: list[str]) -> list[BaseTunerLayer]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for c in components for m in getattr(pipe, c).modules() if isinstance(m, BaseTunerLayer)]


def _load(pipe: Any, lora: LoraUse, name: str) -> None:
    from diffusers.loaders import StableDiffusionXLLoraLoaderMixin

    kwargs: dict[str, Any] = {"adapter_name": name}
    if not isinstance(pipe, StableDiffusionXLLoraLoaderMixin):  # SDXL passes its UNet config itself
        kwargs["unet_config"] = pipe.unet.config
    try:
        with no_progress_bars():
            pipe.load_lora_weights(local_path(lora.path), **kwargs)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnreadableError(
            f"Cannot load LoRA {lora.name} ({lora.path}) into this {type(pipe).__name__}: {exc}. "
            "Check that it was trained for this model family."
        ) from exc


def _restore(pipe: Any, state: LoraState) -> None:
    if not state.backup:
        return
    pipe.unfuse_lora(components=_fusable(pipe))
    with torch.no_grad():
        for module, weight in state.backup.values():
            base = module.get_base_layer() if hasattr(module, "get_base_layer") else module
            cast(torch.Tensor, base.weight).copy_(weight)
    state.backup.clear()


def _fuse(pipe: Any, state: LoraState) -> None:
    components = _fusable(pipe)
    if not components:
        return
    for module in _tuner_layers(pipe, components):
        base = module.get_base_layer()
        state.backup[id(module)] = (module, cast(torch.Tensor, base.weight).detach().to("cpu", copy=True))
    pipe.fuse_lora(components=components, lora_scale=1.0)


def apply_loras(pipe: Any, state: LoraState, loras: tuple[LoraUse, ...]) -> None:
    """Make ``pipe`` compute with exactly ``loras`` (none: the base model, bit for bit); ``state`` is the
    pipeline's LoRA record, updated here."""
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
