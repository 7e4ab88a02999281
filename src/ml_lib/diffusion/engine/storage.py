"""Keep a pipeline's weights in a narrow storage dtype (as read from the file) and compute in fp32.

The CPU policy (``planning/cpu_policy.py``) loads a checkpoint whose file holds fp16 (or bf16) weights in
that dtype, so the loader keeps safetensors' memory-mapped tensors instead of converting every weight to
fp32 (raw diffusers' ``from_single_file(dtype=torch.float32)`` holds the fp16 file and an fp32 copy: 6.7
GB for SD 1.5). Each Linear / Conv / Embedding layer then gets a diffusers layerwise-casting hook that
hands the layer fp32 copies of its weights for its forward and puts the stored tensors back afterwards:

- the values the layer computes with are exactly the fp32 upcast of the file's fp16 values, so the
  result is the result of an fp32 pipeline loaded from the same file (measured: 0 pixel difference);
- unlike diffusers' ``LayerwiseCastingHook``, which casts back after every forward (a new storage tensor
  each call, an extra pass over the weights and, for a memory-mapped file, a second copy of every weight
  beside the mapped pages), the stored tensors are never rewritten.

Layers the hook does not cover (norms, a text encoder's position embeddings) are upcast to fp32 once:
they are < 1% of the weights. A text encoder's token-embedding table (CLIP: 49,408 rows, 152 MB in fp32
for SD 1.5, 405 MB for SDXL's two) stays stored: a lookup only gathers rows, and adding the fp32 position
embeddings promotes them exactly, so the encoder computes what fp32 computes. transformers reports a
model's dtype as its first parameter's (the dtype pipelines cast prompt embeddings to), so the table is
moved after the position embeddings in its parent's module order. Modules already cast layerwise keep
their hooks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import torch
from diffusers.hooks import HookRegistry
from diffusers.hooks.layerwise_casting import LayerwiseCastingHook

from .device import torch_dtype
from .pages import release_tensors
from .scratch import Scratch

__all__ = [
    "HOOK_NAME",
    "StoredWeightsHook",
    "apply_storage",
    "release_scratch",
    "store_unet_fp8",
    "stored_dtypes",
    "upcast_added",
]

#: The registry name diffusers' ``ModelMixin.dtype`` looks up to report the compute dtype.
HOOK_NAME = "layerwise_casting"
_LAYERS = (
    torch.nn.Linear,
    torch.nn.Conv1d,
    torch.nn.Conv2d,
    torch.nn.Conv3d,
    torch.nn.ConvTranspose2d,
    torch.nn.Embedding,
)
#: Kept in the compute dtype: norms everywhere; embeddings of text encoders (their first parameter is
#: what transformers reports as the model's dtype, which the pipelines cast prompt embeddings to).
_SKIP_UNET_VAE = (r"norm",)
_SKIP_TEXT = (r"norm", r"embeddings")
_COMPONENTS = (("unet", _SKIP_UNET_VAE), ("vae", _SKIP_UNET_VAE), ("controlnet", _SKIP_UNET_VAE))
_TEXT = ("text_encoder", "text_encoder_2")
#: Bytes of converted originals between two page releases while storing a UNet in fp8.
_CHUNK = 64 * 2**20


class StoredWeightsHook(LayerwiseCastingHook):
    """Layerwise casting that never rewrites the stored weights: compute copies live for one forward only,
    in ``scratch``'s reused buffer when it can lend it (``engine/scratch.py``)."""

    def __init__(self, storage_dtype: torch.dtype, compute_dtype: torch.dtype, scratch: Scratch) -> None:
        super().__init__(storage_dtype, compute_dtype, non_blocking=False)
        self.scratch = scratch

    def initialize_hook(self, module: torch.nn.Module) -> torch.nn.Module:
        for p in module.parameters(recurse=False):
            if p.is_floating_point() and p.dtype != self.storage_dtype:
                p.data = p.data.to(self.storage_dtype)
        return module

    def pre_forward(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        return args, kwargs

    def post_forward(self, module: torch.nn.Module, output: Any) -> Any:
        return output

    def new_forward(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        """The layer's forward on compute copies; the stored tensors are put back even if it raises (a
        lent view left in place would be overwritten by the next layer's copy)."""
        params = [
            p
            for p in module.parameters(recurse=False)
            if p.is_floating_point() and p.dtype != self.compute_dtype
        ]
        stored = [p.data for p in params]
        lent = self.scratch.lend(stored, self.compute_dtype) if stored else None
        copies = lent if lent is not None else [t.to(self.compute_dtype) for t in stored]
        try:
            for p, c in zip(params, copies, strict=True):
                p.data = c
            forward = cast("Callable[..., Any]", self.fn_ref.original_forward)  # set by diffusers' registry
            return forward(*args, **kwargs)
        finally:
            for p, t in zip(params, stored, strict=True):
                p.data = t
            if lent is not None:
                self.scratch.give_back()


def _hooked(module: torch.nn.Module) -> bool:
    registry = getattr(module, "_diffusers_hook", None)
    return registry is not None and registry.get_hook(HOOK_NAME) is not None


def _token_tables(model: torch.nn.Module) -> list[torch.nn.Embedding]:
    """A text encoder's token-embedding tables (``...embeddings.token_embedding``)."""
    return [
        m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Embedding) and name.endswith("token_embedding")
    ]


def _store_token_tables(model: torch.nn.Module) -> list[torch.nn.Embedding]:
    """Keep ``model``'s token tables stored (see the module docstring); the tables kept."""
    kept = _token_tables(model)
    for name, module in list(model.named_modules()):
        if any(module is k for k in kept):
            parent, _, child = name.rpartition(".")
            children = model.get_submodule(parent)._modules
            children[child] = children.pop(child)  # last: its weight no longer comes first
    first = next((p for p in model.parameters() if p.is_floating_point()), None)
    if first is not None and any(first is m.weight for m in kept):  # an unknown layout: upcast it after all
        return []
    return kept


def _apply(
    model: torch.nn.Module,
    storage: torch.dtype,
    compute: torch.dtype,
    skip: tuple[str, ...],
    scratch: Scratch,
    keep: tuple[torch.nn.Module, ...] = (),
) -> int:
    """Hook every covered layer of ``model`` (copies in ``scratch``), upcast the rest but ``keep``; the
    number of layers hooked."""
    already = any(_hooked(m) for m in model.modules())  # cast layerwise already (fp8 UNet): upcast the rest
    hooked = 0 if already else _hook_layers(model, storage, compute, skip, scratch)
    _upcast_rest(model, compute, keep)
    return hooked


def _layers(model: torch.nn.Module, skip: tuple[str, ...]) -> list[torch.nn.Module]:
    """The layers of ``model`` the storage hook covers, less those whose name matches ``skip``."""
    return [
        m
        for n, m in model.named_modules()
        if isinstance(m, _LAYERS) and not any(re.search(p, n) for p in skip)
    ]


def _hook(module: torch.nn.Module, storage: torch.dtype, compute: torch.dtype, scratch: Scratch) -> None:
    registry = HookRegistry.check_if_exists_or_initialize(module)
    registry.register_hook(StoredWeightsHook(storage, compute, scratch), HOOK_NAME)


def _hook_layers(
    model: torch.nn.Module,
    storage: torch.dtype,
    compute: torch.dtype,
    skip: tuple[str, ...],
    scratch: Scratch,
) -> int:
    layers = _layers(model, skip)
    for module in layers:
        _hook(module, storage, compute, scratch)
    return len(layers)


def _upcast_rest(
    model: torch.nn.Module, compute: torch.dtype, keep: tuple[torch.nn.Module, ...] = ()
) -> None:
    """Every floating parameter or buffer outside a hooked layer and ``keep`` → ``compute``."""
    for module in model.modules():
        if _hooked(module) or any(module is k for k in keep):
            continue
        for p in module.parameters(recurse=False):
            if p.is_floating_point() and p.dtype != compute:
                p.data = p.data.to(compute)
        for name, b in module.named_buffers(recurse=False):
            if b.is_floating_point() and b.dtype != compute:
                setattr(module, name, b.to(compute))


def apply_storage(pipe: Any, storage: str, compute: str) -> tuple[str, ...]:
    """Keep ``pipe``'s weights in ``storage`` (the dtype it was loaded in) and compute in ``compute``.

    Returns what was done, one entry per component ("unet fp16 storage"). The components run one after
    another, so their layers share one scratch buffer.
    """
    store, comp = torch_dtype(storage), torch_dtype(compute)
    done, scratch = [], Scratch()
    parts = [(name, skip) for name, skip in _COMPONENTS] + [(name, _SKIP_TEXT) for name in _TEXT]
    for name, skip in parts:
        model = getattr(pipe, name, None)
        if isinstance(model, torch.nn.Module):
            keep = tuple(_store_token_tables(model)) if name in _TEXT else ()
            _apply(model, store, comp, skip, scratch, keep)
            done.append(f"{name} {_short(storage)} storage")
    return tuple(done)


def store_unet_fp8(pipe: Any, compute: str) -> None:
    """Store ``pipe``'s UNet in float8_e4m3fn, converted once, each layer computing on a ``compute`` copy.

    The CPU form of the fp8 strategies: diffusers' own hook (``enable_layerwise_casting``) casts the weights
    back after every forward, a new tensor each time, which on a CPU costs more memory than fp8 saves
    (SD 1.5 at 256²: 3.3 GB peak against 2.8 GB with the fp16 file as is). Norms stay in ``compute``.
    Converted layer by layer, the memory-mapped originals handed back every :data:`_CHUNK` bytes, so the
    file's UNet pages are never all resident beside the fp8 copies.
    """
    comp = torch_dtype(compute)
    originals: list[torch.Tensor] = []
    held, scratch = 0, Scratch()
    for module in _layers(pipe.unet, _SKIP_UNET_VAE):
        own = [p.data for p in module.parameters(recurse=False) if p.is_floating_point()]
        _hook(module, torch.float8_e4m3fn, comp, scratch)  # converts
        originals += own
        held += sum(t.numel() * t.element_size() for t in own)
        if held > _CHUNK:
            release_tensors(originals)
            originals, held = [], 0
    release_tensors(originals)
    _upcast_rest(pipe.unet, comp)


def upcast_added(pipe: Any, compute: str) -> None:
    """Bring weights added since :func:`apply_storage` (LoRA layers: peft creates them in the base layer's
    storage dtype and casts its input to it) to ``compute``, so adapters compute in fp32 too."""
    comp = torch_dtype(compute)
    for name in (*(n for n, _ in _COMPONENTS), *_TEXT):
        model = getattr(pipe, name, None)
        if isinstance(model, torch.nn.Module):
            keep = tuple(_token_tables(model)) if name in _TEXT and model.dtype == comp else ()
            _upcast_rest(model, comp, keep)


def release_scratch(*models: object) -> int:
    """Drop the calling thread's scratch buffers of ``models``' stored-weight layers (a phase is over);
    the bytes dropped. Anything that is not a module is passed over."""
    scratches: dict[int, Scratch] = {}
    for model in models:
        for module in model.modules() if isinstance(model, torch.nn.Module) else ():
            registry = getattr(module, "_diffusers_hook", None)
            hook = registry.get_hook(HOOK_NAME) if registry is not None else None
            if isinstance(hook, StoredWeightsHook):
                scratches[id(hook.scratch)] = hook.scratch
    dropped = sum(s.held_bytes() for s in scratches.values())
    for s in scratches.values():
        s.release()
    return dropped


def stored_dtypes(model: torch.nn.Module) -> dict[torch.dtype, int]:
    """Parameter counts per stored dtype of ``model`` (what its memory holds between forwards)."""
    counts: dict[torch.dtype, int] = {}
    for p in model.parameters():
        counts[p.dtype] = counts.get(p.dtype, 0) + p.numel()
    return counts


def _short(dtype: str) -> str:
    return {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}.get(dtype, dtype)
