"""GenerationResult and the progress/cancellation types shared by the engine and the faces."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .plan import GenerationPlan

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "CancelToken",
    "GenerationResult",
    "MemoryReport",
    "PhaseMemory",
    "PhaseTimings",
    "Retry",
    "StepInfo",
]


@dataclass(frozen=True, slots=True)
class PhaseTimings:
    """Seconds spent in each phase of one generation."""

    load: float = 0.0
    encode: float = 0.0
    denoise: float = 0.0
    decode: float = 0.0
    save: float = 0.0

    @property
    def total(self) -> float:
        """Sum of all phases."""
        return self.load + self.encode + self.denoise + self.decode + self.save


@dataclass(frozen=True, slots=True)
class PhaseMemory:
    """Peak memory of one phase: the process's resident set (RSS) and, on CUDA, torch's allocated and
    reserved bytes (None elsewhere)."""

    rss_peak: int = 0
    cuda_allocated_peak: int | None = None
    cuda_reserved_peak: int | None = None


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """Peak memory per phase of one generation (the largest over its attempts when it was retried), with
    the RSS before it started and after the cleanup that ends it."""

    load: PhaseMemory = PhaseMemory()
    encode: PhaseMemory = PhaseMemory()
    denoise: PhaseMemory = PhaseMemory()
    decode: PhaseMemory = PhaseMemory()
    rss_before: int = 0
    rss_after: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form: bytes per phase."""
        phases = {"load": self.load, "encode": self.encode, "denoise": self.denoise, "decode": self.decode}
        out: dict[str, Any] = {
            name: {k: v for k, v in _fields(p).items() if v is not None} for name, p in phases.items()
        }
        out["rss_before"], out["rss_after"] = self.rss_before, self.rss_after
        return out


def _fields(p: PhaseMemory) -> dict[str, int | None]:
    return {
        "rss_peak": p.rss_peak,
        "cuda_allocated_peak": p.cuda_allocated_peak,
        "cuda_reserved_peak": p.cuda_reserved_peak,
    }


@dataclass(frozen=True, slots=True)
class Retry:
    """One recovery the engine made: the ``phase`` that failed ("load", "encode", "denoise", "decode"),
    the ``error`` in short ("out of memory", "NaN in the fp16 VAE decode"), the ``action`` taken ("retry with
    balanced", "tiled VAE decode", "VAE decode in fp32") and the original message as ``detail``."""

    phase: str
    error: str
    action: str
    detail: str = ""

    def describe(self) -> str:
        """One phrase: "decode: out of memory → tiled VAE decode"."""
        return f"{self.phase}: {self.error} → {self.action}"

    def to_dict(self) -> dict[str, str]:
        """JSON-compatible form."""
        return {"phase": self.phase, "error": self.error, "action": self.action, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Progress of the denoising loop, reported after each step (1-based); ``preview``, when set, returns a
    PNG of the current latents decoded cheaply (call it inside the callback: it reads the live tensor)."""

    step: int
    total: int
    preview: Callable[[], bytes] | None = None


class CancelToken:
    """Set from any thread to stop a generation between two denoising steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Request cancellation."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation was requested."""
        return self._event.is_set()


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """Images with their seeds, the plan that made them, where they were saved and how long it took."""

    images: tuple[Image.Image, ...]
    seeds: tuple[int, ...]
    plan: GenerationPlan
    paths: tuple[Path, ...]
    timings: PhaseTimings
    generation_id: str = ""  # the history's id, also written into each image (empty: not recorded)
    retries: tuple[Retry, ...] = ()  # every recovery the engine made, in order (empty: none needed)
    memory: MemoryReport | None = None  # peak memory per phase (None: not measured)

    @property
    def memory_retries(self) -> tuple[str, ...]:
        """The retries as phrases ("load: out of memory → retry with balanced")."""
        return tuple(r.describe() for r in self.retries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible summary (images by path)."""
        return {
            "generation_id": self.generation_id,
            "paths": [str(p) for p in self.paths],
            "seeds": list(self.seeds),
            "timings": {
                "load": self.timings.load,
                "encode": self.timings.encode,
                "denoise": self.timings.denoise,
                "decode": self.timings.decode,
                "save": self.timings.save,
            },
            "plan": self.plan.to_dict(),
            "retries": [r.to_dict() for r in self.retries],
            **({"memory": self.memory.to_dict()} if self.memory is not None else {}),
        }
