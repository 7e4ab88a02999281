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

__all__ = ["CancelToken", "GenerationResult", "PhaseTimings", "StepInfo"]


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
    memory_retries: tuple[str, ...] = ()  # strategies that ran out of memory before the one that worked

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
        }
