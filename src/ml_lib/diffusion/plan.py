"""GenerationPlan: the fully resolved contract between planning, engine, output and learning.

A plan has no "auto" left in it. It serialises to JSON and back exactly (``from_json(p.to_json()) == p``)
and carries, in ``decisions``, the value, source and reason of every choice made for the user.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ._codec import OMIT_DEFAULT, from_jsonable, to_jsonable
from .errors import PlanError
from .plan_parts import HiresPlan, MemoryPlan, ModelFormat, ModelRef, VariationPlan
from .prompt_schedule import PromptSchedule

if TYPE_CHECKING:
    from .catalog.records import ModelRecord

__all__ = [
    "SCHEMA_VERSION",
    "BlockScale",
    "ControlUse",
    "Decision",
    "EmbeddingUse",
    "GenerationPlan",
    "HiresPlan",
    "IPAdapterUse",
    "ImageRef",
    "InitImage",
    "LoraUse",
    "MemoryPlan",
    "ModelFormat",
    "ModelRef",
    "RefinerPlan",
    "ResolvedControl",
    "ResolvedIPAdapter",
    "ResolvedRequest",
    "Source",
    "VariationPlan",
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


@dataclass(frozen=True, slots=True)
class Decision:
    """One automatic (or user-forced) choice: which field, what value, from where, and why."""

    field: str
    value: JSONScalar
    source: Source
    reason: str


@dataclass(frozen=True, slots=True)
class LoraUse:
    """A LoRA applied to the generation, with separate UNet and text-encoder weights (A1111's te:unet)."""

    name: str
    path: str
    unet_weight: float = 1.0
    te_weight: float = 1.0
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingUse:
    """A textual-inversion embedding the prompt names (bare word or ``embedding:name``)."""

    name: str
    path: str
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An input image kept in the content-addressed input store; ``sha256`` guards reproduction."""

    path: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ControlUse:
    """One ControlNet unit: model, control image, how it is preprocessed, and how strongly it steers.

    ``name`` is what the infotext shows (the catalog name, else the file stem or folder name);
    ``config_dir`` is the diffusers config folder of a single-file ControlNet (None for folders and Hub ids).
    """

    model: str
    image: ImageRef
    control_type: str = "none"
    scale: float = 1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    name: str = ""
    config_dir: str | None = field(default=None, metadata=OMIT_DEFAULT)


@dataclass(frozen=True, slots=True)
class BlockScale:
    """IP-Adapter scale per attention layer of one UNet block, e.g. ``up.block_0`` → (0.0, 1.0, 0.0)."""

    block: str
    scales: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class IPAdapterUse:
    """One IP-Adapter: a folder in the h94 layout (``subfolder`` holds weights and ``image_encoder/``).

    ``blocks`` (InstantStyle-like per-block scales) replaces the global ``scale`` when given; blocks
    not listed get 0.
    """

    model: str
    weight_name: str
    image: ImageRef
    scale: float = 1.0
    subfolder: str = "models"
    blocks: tuple[BlockScale, ...] = ()

    def scale_config(self) -> float | dict[str, object]:
        """The value diffusers' ``set_ip_adapter_scale`` takes for this adapter."""
        if not self.blocks:
            return self.scale
        config: dict[str, object] = {}
        for item in self.blocks:
            part, _, block = item.block.partition(".")
            values = list(item.scales)
            if part == "mid":
                config["mid"] = values[0] if len(values) == 1 else values
            else:
                config.setdefault(part, {})[block] = values  # type: ignore[index]
        return config


@dataclass(frozen=True, slots=True)
class InitImage:
    """img2img / inpaint input with A1111's options (mask white = repaint)."""

    image: ImageRef
    strength: float = 0.75
    resize_mode: str = "just_resize"
    mask: ImageRef | None = None
    mask_blur: int = 4
    inpaint_full_res: bool = False
    inpaint_padding: int = 32
    # What the masked area starts from (A1111's "Masked content"): fill, original, latent_noise, latent_nothing
    inpainting_fill: str = field(default="original", metadata=OMIT_DEFAULT)

    def steps_run(self, steps: int) -> int:
        """How many of ``steps`` run, as A1111 counts them (``setup_img2img_steps``/``sample_img2img``):
        ``int(steps * min(strength, 0.999)) + 1``, the last ones of the ``steps`` schedule."""
        return min(steps, int(steps * min(self.strength, 0.999)) + 1)

    def pipeline_strength(self, steps: int) -> float:
        """The strength for diffusers' img2img/inpaint, which runs ``int(steps * strength)`` steps: exactly
        :meth:`steps_run` of them (the bare strength would run one step fewer than A1111)."""
        return min(1.0, (self.steps_run(steps) + 0.5) / steps)


@dataclass(frozen=True, slots=True)
class ResolvedControl:
    """A ControlNet the resolve step found: where it is, what the infotext calls it, its config folder."""

    model: str
    name: str
    image: ImageRef
    config_dir: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedIPAdapter:
    """An IP-Adapter the resolve step found, as diffusers loads it: folder, subfolder, weights file."""

    model: str
    subfolder: str
    weight_name: str
    image: ImageRef


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    """Every name of a request turned into a file, checked loadable; what planning consumes.

    ``model_decision`` says why the checkpoint was chosen when the user named none. ``loras`` are the
    requested ones (``--lora`` first, then the prompt's ``<lora:>`` tags); ``candidates`` are the usable
    catalog records automatic choices may pick from (empty with ``auto`` off); ``unet_params`` is the
    denoiser's parameter count, read from the weights' headers (None when unknown, e.g. a Hub model), and
    ``text_encoder_params`` (all text encoders), ``vae_params`` and ``weight_file_bytes`` likewise;
    ``clip_layers`` is the layer count of the model's text encoder(s) (the fewest of SDXL's two), the most
    clip skip can take (None when the model's config does not say); ``test_model`` marks random weights
    written by ``ml_lib.diffusion.testing`` (planned tiny and fast); ``refiner`` is the SDXL refiner asked
    for (``refiner_decision`` says why, when ``auto`` picked it) and ``upscaler_path``/``upscaler_hash`` a
    learned hires upscaler's file; ``hires_checkpoint`` is the hires pass's own checkpoint (A1111's "Hires
    checkpoint") and ``hires_checkpoint_params`` its parameter count (every component; None: unknown).
    """

    model: ModelRef
    model_decision: Decision | None = None
    loras: tuple[LoraUse, ...] = ()
    embeddings: tuple[EmbeddingUse, ...] = ()
    controls: tuple[ResolvedControl, ...] = ()
    ip_adapters: tuple[ResolvedIPAdapter, ...] = ()
    init_image: ImageRef | None = None
    mask: ImageRef | None = None
    candidates: tuple[ModelRecord, ...] = ()
    unet_params: int | None = None
    test_model: bool = False
    clip_layers: int | None = None
    text_encoder_params: int | None = None
    vae_params: int | None = None
    weight_file_bytes: int | None = None
    refiner: ModelRef | None = None
    refiner_decision: Decision | None = None
    upscaler_path: str | None = None
    upscaler_hash: str | None = None
    #: The floating dtype most of the checkpoint's weights are stored in on disk (None: unknown).
    weight_dtype: str | None = None
    hires_checkpoint: ModelRef | None = None
    hires_checkpoint_params: int | None = None


@dataclass(frozen=True, slots=True)
class RefinerPlan:
    """The SDXL refiner taking over the base's latents at ``switch_at`` (a fraction of the schedule)."""

    model: ModelRef
    switch_at: float = 0.8


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
    embeddings: tuple[EmbeddingUse, ...] = ()
    controls: tuple[ControlUse, ...] = ()
    ip_adapters: tuple[IPAdapterUse, ...] = ()
    init: InitImage | None = None
    decisions: tuple[Decision, ...] = ()
    schema_version: int = SCHEMA_VERSION
    #: CPU threads torch computes with (0: not chosen, as in plans before it and on a GPU); part of the
    #: plan because some kernels round differently with another count.
    threads: int = field(default=0, metadata=OMIT_DEFAULT)
    #: Memory strategy and estimate (None: not planned, as in plans before it).
    memory: MemoryPlan | None = field(default=None, metadata=OMIT_DEFAULT)
    #: A1111's prompt editing, alternation and AND over the denoiser calls (None: the prompts are
    #: conditioned on as written, as in plans before it).
    prompt_schedule: PromptSchedule | None = field(default=None, metadata=OMIT_DEFAULT)
    #: SDXL with an empty negative prompt: "zeros" (A1111 and diffusers: zero embeddings) or "encode"
    #: (ComfyUI: the text encoders encode "").
    sdxl_empty_negative: str = field(default="zeros", metadata=OMIT_DEFAULT)
    #: A1111's hires fix (None: one pass).
    hires: HiresPlan | None = field(default=None, metadata=OMIT_DEFAULT)
    #: SDXL refiner hand-off (None: the base runs every step).
    refiner: RefinerPlan | None = field(default=None, metadata=OMIT_DEFAULT)
    #: Variation seed and seed resize (None: plain seeds).
    variation: VariationPlan | None = field(default=None, metadata=OMIT_DEFAULT)
    #: A1111's n_iter: batches of ``batch_size`` run one after the other.
    batch_count: int = field(default=1, metadata=OMIT_DEFAULT)
    #: The dtype weights are kept in between forwards when it differs from ``dtype`` (the compute dtype):
    #: the CPU policy's fp16 storage with fp32 compute (None: weights in ``dtype``).
    storage_dtype: str | None = field(default=None, metadata=OMIT_DEFAULT)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Seed of each image of every batch, as A1111 does: seed + index over ``batch_count`` x
        ``batch_size`` images, or the same seed for all when a variation strength is set."""
        step = 0 if self.variation is not None and self.variation.strength != 0 else 1
        return tuple(self.seed + i * step for i in range(self.batch_size * self.batch_count))

    @property
    def subseeds(self) -> tuple[int, ...]:
        """Variation seed of each image (A1111: variation seed + index); empty without a variation."""
        if self.variation is None:
            return ()
        return tuple(self.variation.seed + i for i in range(self.batch_size * self.batch_count))

    def decision(self, name: str) -> Decision | None:
        """The decision recorded for field ``name``, if any."""
        return next((d for d in self.decisions if d.field == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (enums as their values)."""
        return to_jsonable(self)

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationPlan:
        """Read a plan back; raises PlanError on a wrong schema version, missing, unknown or mistyped fields."""
        if not isinstance(data, Mapping):
            raise PlanError("A plan must be a JSON object.")
        _check_depth(data)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PlanError(
                f"Plan schema version {version!r} is not supported (this version reads {SCHEMA_VERSION}); "
                "upgrade ml-lib to read newer plans."
            )
        return from_jsonable(cls, dict(data), error=PlanError, strict=True)

    @classmethod
    def from_json(cls, text: str) -> GenerationPlan:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"Plan JSON is malformed: {exc}") from exc
        except RecursionError as exc:  # the C parser recurses once per level and stops cleanly
            raise PlanError(_TOO_DEEP) from exc
        return cls.from_dict(data)


#: The deepest nesting a plan may have; a real plan nests about 5 levels.
MAX_PLAN_DEPTH = 64
_TOO_DEEP = (
    f"Plan JSON is nested deeper than {MAX_PLAN_DEPTH} levels; it was not written by ml-diffusion. "
    "Use a plan from `ml-diffusion plan --json` or an image's embedded plan."
)


def _check_depth(data: object) -> None:
    """PlanError when lists/objects nest deeper than MAX_PLAN_DEPTH (checked without recursion)."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_PLAN_DEPTH:
            raise PlanError(_TOO_DEEP)
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (Mapping, list, tuple)))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (Mapping, list, tuple)))
