"""Catalog records built in memory (no files) for planning tests and benchmarks."""

from __future__ import annotations

from ..catalog.families import Family
from ..catalog.records import (
    LoraDetails,
    ModelInfo,
    ModelKind,
    ModelRecord,
    Sidecar,
    SpeedHint,
    Status,
    StorageFormat,
    TagCount,
)

__all__ = ["checkpoint_record", "lora_record"]


def _record(name: str, info: ModelInfo, folder: str, sidecar: Sidecar | None, status: Status) -> ModelRecord:
    path = f"/models/{folder}/{name}.safetensors"
    return ModelRecord(
        path, name, name, f"/models/{folder}", "a1111", StorageFormat.SAFETENSORS, status, info, 1, 1, 1,
        sidecar=sidecar,
    )  # fmt: skip


def checkpoint_record(
    name: str,
    family: Family = Family.SDXL,
    *,
    derivative: str | None = None,
    base_model: str | None = None,
    tags: tuple[str, ...] = (),
    description: str | None = None,
    status: Status = Status.OK,
) -> ModelRecord:
    """A checkpoint record; Civitai fields go into a sidecar when given."""
    info = ModelInfo(ModelKind.CHECKPOINT, family, "test record", derivative=derivative)
    sidecar = None
    if base_model or tags or description:
        sidecar = Sidecar(description=description, base_model=base_model, tags=tags)
    return _record(name, info, "Stable-diffusion", sidecar, status)


def lora_record(
    name: str,
    family: Family = Family.SDXL,
    *,
    triggers: tuple[str, ...] = (),
    tags: tuple[tuple[str, int], ...] = (),
    civitai_tags: tuple[str, ...] = (),
    description: str | None = None,
    weight: float | None = None,
    speed: SpeedHint | None = None,
    status: Status = Status.OK,
) -> ModelRecord:
    """A LoRA record with kohya-style trigger words and tag counts, and an optional sidecar."""
    details = LoraDetails(
        "kohya", "LoRA", 16, 8.0, ("unet", "text_encoder"), 100, output_name=name,
        trigger_words=triggers, top_tags=tuple(TagCount(t, c) for t, c in tags), speed=speed,
    )  # fmt: skip
    info = ModelInfo(ModelKind.LORA, family, "test record", variant="LoRA", lora=details)
    sidecar = None
    if civitai_tags or description or weight is not None:
        sidecar = Sidecar(description=description, preferred_weight=weight, tags=civitai_tags)
    return _record(name, info, "Lora", sidecar, status)
