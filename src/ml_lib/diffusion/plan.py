"""GenerationPlan: the fully resolved contract between planning, engine, output and learning.

A plan has no "auto" left in it. It serialises to JSON and back exactly (``from_json(p.to_json()) == p``)
and carries, in ``decisions``, the value, source and reason of every choice made for the user.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .errors import PlanError

__all__ = [
    "SCHEMA_VERSION",
    "Decision",
    "GenerationPlan",
    "LoraUse",
    "ModelFormat",
    "ModelRef",
    "Source",
]

SCHEMA_VERSION = 1

JSONScalar = str | int | float | bool | None


class Source(str, Enum):
    """Where a planned value came from."""

    USER = "user"
    PROFILE = "profile"
    ANALYSIS = "analysis"
    CATALOG = "catalog"
    LEARNED = "learned"
    RANDOM = "random"
    DEVICE = "device"


class ModelFormat(str, Enum):
    """How a model is stored."""

    DIFFUSERS = "diffusers"
    SINGLE_FILE = "single_file"
    HUB = "hub"


@dataclass(frozen=True, slots=True)
class Decision:
    """One automatic (or user-forced) choice: which field, what value, from where, and why."""

    field: str
    value: JSONScalar
    source: Source
    reason: str


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved model: where it is, how it is stored, and what it is."""

    reference: str
    format: ModelFormat
    family: str
    prediction_type: str = "epsilon"
    name: str = ""
    hash: str | None = None
    config_dir: str | None = None


@dataclass(frozen=True, slots=True)
class LoraUse:
    """A LoRA applied to the generation, with separate UNet and text-encoder weights (A1111's te:unet)."""

    name: str
    path: str
    unet_weight: float = 1.0
    te_weight: float = 1.0
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationPlan:
    """Everything the engine needs to produce images, with the reason for each automatic choice."""

    prompt: str
    negative_prompt: str
    model: ModelRef
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    schedule: str
    seed: int
    batch_size: int
    clip_skip: int
    device: str
    dtype: str
    output_dir: str
    name_template: str
    image_format: str = "png"
    loras: tuple[LoraUse, ...] = ()
    decisions: tuple[Decision, ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def seeds(self) -> tuple[int, ...]:
        """Seed of each image in the batch, as A1111 does: seed + index."""
        return tuple(self.seed + i for i in range(self.batch_size))

    def decision(self, name: str) -> Decision | None:
        """The decision recorded for field ``name``, if any."""
        return next((d for d in self.decisions if d.field == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (enums as their values)."""
        return _plain(dataclasses.asdict(self))

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationPlan:
        """Read a plan back; raises PlanError on a wrong schema version, missing or unknown fields."""
        if not isinstance(data, Mapping):
            raise PlanError("A plan must be a JSON object.")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PlanError(
                f"Plan schema version {version!r} is not supported (this version reads {SCHEMA_VERSION}); "
                "upgrade ml-lib to read newer plans."
            )
        values = dict(data)
        values["model"] = _build(ModelRef, values.get("model"), "model")
        for name, item_cls in _LISTS.items():
            raw = values.get(name, [])
            if not isinstance(raw, list):
                raise PlanError(f"Plan field {name!r} must be a list.")
            values[name] = tuple(_build(item_cls, item, f"{name}[]") for item in raw)
        return _build(cls, values, "plan")

    @classmethod
    def from_json(cls, text: str) -> GenerationPlan:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"Plan JSON is malformed: {exc}") from exc
        return cls.from_dict(data)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_LISTS: dict[str, type] = {"decisions": Decision, "loras": LoraUse}
_ENUM_FIELDS: dict[str, type[Enum]] = {"source": Source, "format": ModelFormat}
_NUMBER_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "str | None": (str, type(None)),
}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise PlanError(f"Plan field {where!r} must be an object.")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise PlanError(f"Unknown field(s) in {where}: {', '.join(sorted(unknown))}.")
    kwargs: dict[str, Any] = {}
    for name, f in names.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise PlanError(f"Missing field {where}.{name}.")
            continue
        value = data[name]
        if name in _ENUM_FIELDS and cls is not GenerationPlan:
            try:
                value = _ENUM_FIELDS[name](value)
            except ValueError as exc:
                raise PlanError(f"Bad value {value!r} for {where}.{name}.") from exc
        expected = _NUMBER_TYPES.get(str(f.type))
        if expected is not None and (isinstance(value, bool) or not isinstance(value, expected)):
            raise PlanError(f"Field {where}.{name} must be {f.type}, got {value!r}.")
        if str(f.type) == "float":
            value = float(value)
        kwargs[name] = value
    return cls(**kwargs)
