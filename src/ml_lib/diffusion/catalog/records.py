"""What the catalog knows about a model file, as frozen dataclasses with a JSON round trip."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

import orjson

from .._codec import from_jsonable, to_jsonable
from ..errors import ModelUnreadableError
from .families import Family, PredictionType

__all__ = [
    "MODEL_SUFFIXES",
    "PICKLE_SUFFIXES",
    "FileHashes",
    "LoraDetails",
    "ModelInfo",
    "ModelKind",
    "ModelRecord",
    "Sidecar",
    "SpeedHint",
    "Status",
    "StorageFormat",
    "TagCount",
]

RECORD_VERSION = 1


class ModelKind(str, Enum):
    """What a model file is for."""

    CHECKPOINT = "checkpoint"
    UNET = "unet"  # a UNet or diffusion transformer alone
    LORA = "lora"  # LoRA and LyCORIS (the variant says which)
    CONTROLNET = "controlnet"
    VAE = "vae"
    IP_ADAPTER = "ip-adapter"
    IMAGE_ENCODER = "image-encoder"
    TEXT_ENCODER = "text-encoder"
    EMBEDDING = "embedding"
    UNKNOWN = "unknown"


class Status(str, Enum):
    """Whether a catalogued file can be used."""

    OK = "ok"
    BROKEN = "broken"  # unreadable or malformed; ``reason`` says why
    UNSAFE = "unsafe"  # a pickle: catalogued, never opened
    MISSING = "missing"  # gone from disk at the last scan


class StorageFormat(str, Enum):
    """How the weights are stored."""

    SAFETENSORS = "safetensors"
    PICKLE = "pickle"
    DIFFUSERS = "diffusers"


#: How a model file is stored, by its suffix.
MODEL_SUFFIXES: dict[str, StorageFormat] = {
    ".safetensors": StorageFormat.SAFETENSORS,
    ".sft": StorageFormat.SAFETENSORS,
    ".ckpt": StorageFormat.PICKLE,
    ".pt": StorageFormat.PICKLE,
    ".pth": StorageFormat.PICKLE,
    ".bin": StorageFormat.PICKLE,
}
#: Suffixes of pickle files: never opened (loading one could run code).
PICKLE_SUFFIXES = frozenset(
    {s for s, f in MODEL_SUFFIXES.items() if f is StorageFormat.PICKLE} | {".pkl", ".pickle"}
)


@dataclass(frozen=True, slots=True)
class TagCount:
    """A training tag and how many captions held it."""

    tag: str
    count: int


@dataclass(frozen=True, slots=True)
class SpeedHint:
    """A distillation LoRA (LCM, Turbo, Lightning, Hyper, DMD2, TCD) and the settings it is made for."""

    name: str
    steps: int | None
    cfg: float | None
    sampler: str | None
    schedule: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class LoraDetails:
    """What a LoRA's keys and kohya/modelspec metadata tell."""

    style: str  # kohya | diffusers | peft | xlabs | lycoris
    network: str  # LoRA | LoCon | LoHa | LoKr | DoRA | IA3 | GLoRA | OFT | Full
    rank: int | None = None
    alpha: float | None = None
    parts: tuple[str, ...] = ()  # unet / transformer, text_encoder, text_encoder_2, text_encoder_3
    modules: int = 0
    base_model_version: str | None = None
    training_model: str | None = None
    output_name: str | None = None
    network_module: str | None = None
    resolution: tuple[int, int] | None = None
    trigger_words: tuple[str, ...] = ()
    top_tags: tuple[TagCount, ...] = ()
    images: int | None = None
    speed: SpeedHint | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the header says: kind, family and the evidence for them."""

    kind: ModelKind
    family: Family
    reason: str
    prediction_type: PredictionType = PredictionType.EPSILON
    variant: str = ""  # LoHa, control-lora, ViT-H/14, CLIP-L, flux-dev, 3.5-large …
    derivative: str | None = None  # Pony, Illustrious, NoobAI …
    standard: bool = True
    title: str | None = None
    tensors: int = 0
    lora: LoraDetails | None = None
    test_model: bool = False  # random weights written by ml_lib.diffusion.testing: never chosen automatically


@dataclass(frozen=True, slots=True)
class Sidecar:
    """Files next to the model: A1111's ``<name>.json``, Civitai ``.civitai.info``/``.info``, previews."""

    description: str | None = None
    sd_version: str | None = None
    activation_text: str | None = None
    preferred_weight: float | None = None
    negative_text: str | None = None
    notes: str | None = None
    civitai_name: str | None = None
    civitai_version: str | None = None
    base_model: str | None = None
    trained_words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    nsfw: bool | None = None
    previews: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileHashes:
    """Hashes known for a file (None until computed): full sha256 and kohya's addnet hash."""

    sha256: str | None = None
    addnet: str | None = None  # sha256 of the bytes after the safetensors header

    @property
    def autov2(self) -> str | None:
        """A1111's "Model hash" / Civitai AutoV2: the first 10 hex digits of the sha256."""
        return self.sha256[:10] if self.sha256 else None

    @property
    def addnet_short(self) -> str | None:
        """The 12 hex digits A1111 shows for a LoRA ("Lora hashes")."""
        return self.addnet[:12] if self.addnet else None


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One catalogued model file or folder."""

    path: str
    name: str  # file stem (folder name for diffusers)
    rel_name: str  # path under its model folder, without suffix, '/'-separated
    root: str
    layout: str  # a1111 | comfyui | extra-paths | diffusers | hf-cache | plain
    format: StorageFormat
    status: Status
    info: ModelInfo
    size: int = 0
    mtime_ns: int = 0
    weights_bytes: int = 0  # the file's size; all weight files of a diffusers folder
    fingerprint: str = ""
    sidecar_sig: str = ""
    hashes: FileHashes = FileHashes()
    sidecar: Sidecar | None = None
    first_seen: float = 0.0
    updated: float = 0.0  # when the record last changed (probe, hash, move, missing)
    version: int = RECORD_VERSION

    @property
    def kind(self) -> ModelKind:
        """Shortcut for ``info.kind``."""
        return self.info.kind

    @property
    def family(self) -> Family:
        """Shortcut for ``info.family``."""
        return self.info.family

    @property
    def trigger_words(self) -> tuple[str, ...]:
        """Activation text (A1111 sidecar), Civitai trained words, then the LoRA's own trigger words."""
        words: list[str] = []
        if self.sidecar is not None:
            if self.sidecar.activation_text:
                words.append(self.sidecar.activation_text)
            words.extend(self.sidecar.trained_words)
        if self.info.lora is not None:
            words.extend(self.info.lora.trigger_words)
        return tuple(dict.fromkeys(words))

    @property
    def short_hash(self) -> str | None:
        """The hash A1111 shows: addnet (12) for safetensors LoRAs, else AutoV2 (10)."""
        if self.kind is ModelKind.LORA and self.format is StorageFormat.SAFETENSORS:
            return self.hashes.addnet_short or self.hashes.autov2
        return self.hashes.autov2

    def to_json(self) -> str:
        """Compact JSON."""
        return json.dumps(to_jsonable(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelRecord:
        """Inverse of :meth:`to_json`."""
        return from_jsonable(cls, orjson.loads(text), error=ModelUnreadableError)
