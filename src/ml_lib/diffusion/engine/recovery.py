"""Recover from running out of memory and from NaNs in the VAE, bounded, and record every retry.

- Out of memory at load, encode or denoise (CUDA's ``OutOfMemoryError``, the CPU allocator's
  ``RuntimeError``, Python's ``MemoryError``): free what the attempt held (the failed pipeline, every idle
  pipeline in the pool, the frames of the exception that still point at tensors), step up one strategy
  (none → balanced → sequential → aggressive) and run again. After ``aggressive`` the error is typed
  (:class:`~ml_lib.diffusion.errors.OutOfMemory`) and names the estimate and what was tried.
- Out of memory at decode: the same latents are decoded again with VAE tiling on (one tile at a time)
  before anything is reloaded; only when the tiled decode fails too does the run step up.
- NaN or infinite values from a half-precision VAE decode: decoded again with the VAE in fp32.

Each retry is a :class:`~ml_lib.diffusion.result.Retry` appended to the caller's list.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import NonFiniteError, OutOfMemory
from ..plan import GenerationPlan
from ..result import Retry
from ._oom import is_out_of_memory
from .memory import stronger_strategy, tile_vae
from .peaks import PhaseMonitor, release_memory

if TYPE_CHECKING:
    from PIL import Image

    from .executor import ExecutionOutput
    from .pool import LoadedPipeline

__all__ = ["Recovered", "decode_recovering", "forget_frames", "run_recovering"]

log = logging.getLogger(__name__)

_DECODED = "decoded image"
GB = 1e9


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a run that may have been retried gives: its output, the strategy that worked and the seconds
    spent loading (over every attempt)."""

    output: ExecutionOutput
    strategy: str
    load_seconds: float


def forget_frames(exc: BaseException) -> None:
    """Clear the local variables of the finished frames in ``exc``'s traceback and in those of its causes,
    so that a failed attempt's pipeline and tensors can be freed while the exception is still held."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            with suppress(RuntimeError):  # raised for a frame still running (the caller's): left as it is
                tb.tb_frame.clear()
                if sys.version_info < (3, 13):  # before PEP 667 a frame keeps its locals() dict (diffusers'
                    tb.tb_frame.f_locals.clear()  # step callbacks make one) past clear()
            tb = tb.tb_next
        current = current.__cause__ or current.__context__


def _detail(exc: BaseException) -> str:
    """The first line of what failed: the allocator's message under our OutOfMemory when there is one."""
    if isinstance(exc, OutOfMemory) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _as_oom(exc: BaseException, phase: str) -> OutOfMemory | None:
    """``exc`` as a typed OutOfMemory (None when it is another failure)."""
    if isinstance(exc, OutOfMemory):
        return exc
    if isinstance(exc, (MemoryError, RuntimeError)) and is_out_of_memory(exc):
        return OutOfMemory(f"Out of memory while loading the model: {_detail(exc)}.", phase)
    return None


def run_recovering(
    plan: GenerationPlan,
    *,
    load: Callable[[str], LoadedPipeline],
    run: Callable[[LoadedPipeline, str], ExecutionOutput],
    release: Callable[[LoadedPipeline], None],
    drop: Callable[[LoadedPipeline | None], None],
    monitor: PhaseMonitor,
    retries: list[Retry],
) -> Recovered:
    """Load (``load(strategy)``, pinned) and run (``run(loaded, strategy)``) ``plan``, then ``release(loaded)``;
    after an out-of-memory, ``drop(loaded)`` frees the failed attempt's pipeline (None: the load itself
    failed) and whatever else the caller can free, and the next strategy up is tried. Raises the last
    OutOfMemory, naming the estimate and the strategies tried, when ``aggressive`` fails too."""
    strategy = plan.memory.strategy if plan.memory is not None else "none"
    tried: list[str] = []
    load_seconds = 0.0
    while True:  # bounded: every pass steps up one strategy or raises
        tried.append(strategy)
        loaded: LoadedPipeline | None = None
        failure: OutOfMemory | None = None
        cause: BaseException | None = None
        t0 = time.perf_counter()
        try:
            with monitor.phase("load"):
                loaded = load(strategy)
            load_seconds += time.perf_counter() - t0
            try:
                return Recovered(run(loaded, strategy), strategy, load_seconds)
            finally:
                release(loaded)
        except (MemoryError, RuntimeError, OutOfMemory) as exc:
            failure = _as_oom(exc, "load")
            if failure is None:
                raise
            cause = exc
        if loaded is None:
            load_seconds += time.perf_counter() - t0
        forget_frames(cause)
        drop(loaded)
        loaded = None
        release_memory(plan.device)
        stronger = stronger_strategy(strategy)
        if stronger is None:
            raise _gave_up(failure, plan, tuple(tried)) from cause
        log.warning("out of memory at %s with %s: retrying with %s", failure.phase, strategy, stronger)
        retries.append(Retry(failure.phase, "out of memory", f"retry with {stronger}", _detail(cause)))
        strategy = stronger


def _gave_up(failure: OutOfMemory, plan: GenerationPlan, tried: tuple[str, ...]) -> OutOfMemory:
    memory = plan.memory
    estimate = memory.estimated_peak_bytes if memory is not None else None
    parts = []
    if estimate:
        parts.append(f"Estimated ~{estimate / GB:.1f} GB")
    if memory is not None and memory.budget_bytes:
        parts.append(f"{memory.budget_bytes / GB:.1f} GB available")
    said = f" {', '.join(parts)};" if parts else ""
    message = f"{failure}{said} tried {', '.join(tried)} (failed at {failure.phase})."
    return OutOfMemory(message, failure.phase, tried=tried, estimated_peak_bytes=estimate)


@contextmanager
def _vae_state(vae: Any, *, fp32: bool, tiled: bool) -> Iterator[None]:
    """The VAE in fp32 and/or tiled for one decode, put back as it was afterwards (the pipeline is pooled:
    a later generation must find it as its strategy left it)."""
    dtype, was_tiled = vae.dtype, bool(getattr(vae, "use_tiling", False))
    sizes = (getattr(vae, "tile_sample_min_size", None), getattr(vae, "tile_latent_min_size", None))
    try:
        if fp32 and dtype != torch.float32:
            vae.to(torch.float32)
        if tiled and not was_tiled:
            tile_vae(vae)
        yield
    finally:
        if tiled and not was_tiled:
            vae.disable_tiling()
            if sizes[0] is not None:
                vae.tile_sample_min_size, vae.tile_latent_min_size = sizes
        if vae.dtype != dtype:
            vae.to(dtype)


def _decodes_in_half(vae: Any) -> bool:
    """Whether the executor's decode runs in half precision (it upcasts a ``force_upcast`` VAE itself)."""
    return bool(vae.dtype != torch.float32 and not getattr(vae.config, "force_upcast", False))


def decode_recovering(
    decode: Callable[[Any, torch.Tensor, GenerationPlan], list[Image.Image]],
    pipe: Any,
    latents: torch.Tensor,
    plan: GenerationPlan,
    retries: list[Retry],
) -> list[Image.Image]:
    """``decode(pipe, latents, plan)``, retried with a tiled VAE after an out-of-memory and in fp32 after
    NaNs from a half-precision VAE (each at most once); other failures, and these once retried, propagate."""
    fp32 = tiled = False
    vae = pipe.vae
    detail: BaseException
    while True:  # bounded: each pass sets one more flag or returns or raises
        try:
            with _vae_state(vae, fp32=fp32, tiled=tiled):
                return decode(pipe, latents, plan)
        except NonFiniteError as exc:
            if fp32 or exc.stage != _DECODED or not _decodes_in_half(vae):
                raise
            error, action, detail = f"NaN in the {_dtype_name(vae)} VAE decode", "VAE decode in fp32", exc
            fp32 = True
        except (MemoryError, RuntimeError) as exc:
            if tiled or not is_out_of_memory(exc) or getattr(vae, "use_tiling", False):
                raise
            error, action, detail = "out of memory", "tiled VAE decode", exc
            tiled = True
        log.warning("decode: %s; retrying with %s", error, action)
        retries.append(Retry("decode", error, action, _detail(detail)))
        forget_frames(detail)
        del detail
        release_memory(plan.device)


def _dtype_name(vae: Any) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(vae.dtype, str(vae.dtype))
