"""What another tool's image says, mapped to our request fields, with what could not be mapped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...request import GenerationRequest, LoraRequest

__all__ = ["ForeignLora", "ForeignMetadata", "Unmapped"]


@dataclass(frozen=True, slots=True)
class ForeignLora:
    """A LoRA another tool applied as a loader node or a list entry (A1111's prompt tags stay in the prompt)."""

    name: str
    unet_weight: float = 1.0
    te_weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A setting the image records that a regeneration here does not honour, and why."""

    key: str
    value: str
    reason: str

    def __str__(self) -> str:
        if not self.value:
            return f"{self.key}: {self.reason}"
        value = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return f"{self.key} = {value}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ForeignMetadata:
    """Generation settings read from an image of A1111, Forge, SD.Next, ComfyUI, InvokeAI or Fooocus.

    ``None`` fields were not recorded (the planner chooses them); ``unmapped`` lists every recorded
    setting a regeneration here does not honour. ``source`` names the metadata read (a PNG chunk).
    """

    tool: str
    source: str
    prompt: str = ""
    negative_prompt: str = ""
    model: str | None = None
    model_hash: str | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    sampler: str | None = None
    schedule: str | None = None
    seed: int | None = None
    clip_skip: int | None = None
    loras: tuple[ForeignLora, ...] = ()
    unmapped: tuple[Unmapped, ...] = field(default=())
    #: A1111's second passes and seeds as request fields (hires fix, refiner, variation seed …).
    passes: tuple[tuple[str, Any], ...] = ()

    def mapped(self) -> tuple[tuple[str, str], ...]:
        """The settings a regeneration honours, as (label, value) pairs for display."""
        pairs: list[tuple[str, Any]] = [
            ("Prompt", self.prompt),
            ("Negative prompt", self.negative_prompt),
            ("Model", self.model),
            ("Model hash", self.model_hash),
            ("Size", f"{self.width}x{self.height}" if self.width and self.height else None),
            ("Steps", self.steps),
            ("CFG scale", self.cfg_scale),
            ("Sampler", self.sampler),
            ("Schedule type", self.schedule),
            ("Seed", self.seed),
            ("Clip skip", self.clip_skip),
        ]
        pairs.extend(
            (f"LoRA {i + 1}", f"{lora.name} (unet {lora.unet_weight:g}, te {lora.te_weight:g})")
            for i, lora in enumerate(self.loras)
        )
        pairs.extend((name.replace("_", " ").capitalize(), value) for name, value in self.passes)
        return tuple((label, str(value)) for label, value in pairs if value not in (None, ""))

    def to_request(self, *, model: str | None = None, output_dir: str | None = None) -> GenerationRequest:
        """The request that regenerates the image: every mapped field set, one image, ``model`` (a path or
        catalog name) in place of the recorded model name when given."""
        return GenerationRequest(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            model=model or self.model,
            width=self.width,
            height=self.height,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            sampler=self.sampler,
            schedule=self.schedule,
            seed=self.seed,
            batch_size=1,
            clip_skip=self.clip_skip,
            output_dir=output_dir,
            loras=tuple(LoraRequest(lora.name, lora.unet_weight, lora.te_weight) for lora in self.loras),
            auto=False,
            learn=False,
            **dict(self.passes),
        )
