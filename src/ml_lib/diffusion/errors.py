"""The one exception tree of ml_lib.diffusion.

Every error the library raises on purpose is a subclass of :class:`MlDiffusionError`, and its message
says what went wrong and how to fix it::

    MlDiffusionError
    ├── ConfigError                 settings, environment, missing optional extra
    │   └── AnnotatorUnavailableError  a model-based preprocessor's package, module or weight file is missing
    ├── RequestError                a request that cannot be planned (size, steps, names …)
    │   ├── UnknownSamplerError     sampler or schedule name we do not know
    │   └── InputImageError         an input image or mask we cannot use (unreadable, too big, bad mask)
    │       └── InputImageChangedError  a stored input image missing or no longer matching its hash
    ├── PlanError                   a plan JSON that cannot be read (schema, fields)
    ├── ModelError
    │   ├── ModelNotFoundError      no file, folder or Hub repository by that reference
    │   ├── ModelUnreadableError    the file exists but cannot be read or parsed
    │   ├── UnsupportedModelError   a family or layout we cannot load
    │   ├── AmbiguousModelError     a catalog name that fits several models (lists them)
    │   └── OfflineError            the model needs the Hugging Face Hub, which cannot be reached
    ├── GenerationError             the engine failed while running a plan
    │   └── GenerationCancelled     cancelled between steps on request
    ├── OutputError
    │   ├── OutputNotWritableError  output folder missing and not creatable, or read-only
    │   └── DiskFullError           the disk filled while saving (no partial file is left)
    └── MetadataError               an image whose metadata cannot be read

Added since, under the parents named::

    ConfigError
    └── DatabaseDamagedError        the database file is damaged and could not be moved aside
    RequestError
    ├── PromptError                 a prompt with degenerate numbers (nesting, weights)
    ├── RatingError                 a rating out of range, or a bad tag or note
    └── UnknownGenerationError      an image or id the history cannot match to a generation
    MlDiffusionError
    └── HistoryError                the history file cannot be opened, written or restored
        └── HistoryImportError      a history export (JSONL) that cannot be read back
    MetadataError
    └── ForeignMetadataError        another tool's metadata (ComfyUI graph, InvokeAI/Fooocus JSON) is malformed
    RequestError
    └── DeviceUnavailableError      a device asked for (or planned on) that this machine does not have
    GenerationError
    ├── OutOfMemory                 out of memory at load, denoise or decode (after the recovery ladder)
    └── NonFiniteError              NaN or infinite numbers in the latents or the decoded image
    UnsupportedModelError
    └── ModelFamilyMismatchError    a second model (hires checkpoint) of another family than the first
"""

from __future__ import annotations

__all__ = [
    "AmbiguousModelError",
    "AnnotatorUnavailableError",
    "ConfigError",
    "DatabaseDamagedError",
    "DeviceUnavailableError",
    "DiskFullError",
    "ForeignMetadataError",
    "GenerationCancelled",
    "GenerationError",
    "HistoryError",
    "HistoryImportError",
    "InputImageChangedError",
    "InputImageError",
    "MetadataError",
    "MlDiffusionError",
    "ModelError",
    "ModelFamilyMismatchError",
    "ModelNotFoundError",
    "ModelUnreadableError",
    "NonFiniteError",
    "OfflineError",
    "OutOfMemory",
    "OutputError",
    "OutputNotWritableError",
    "PlanError",
    "PromptError",
    "RatingError",
    "RequestError",
    "UnknownGenerationError",
    "UnknownSamplerError",
    "UnsupportedModelError",
]


class MlDiffusionError(Exception):
    """Base of every error raised on purpose by ml_lib.diffusion."""


class ConfigError(MlDiffusionError):
    """Settings or environment are wrong, or an optional extra is not installed."""


class AnnotatorUnavailableError(ConfigError):
    """A model-based ControlNet preprocessor cannot run: its package, a module it imports or a weight file
    is missing. ``missing`` names each (a package or module name, or a weight file's full path)."""

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class RequestError(MlDiffusionError, ValueError):
    """A generation request that cannot be planned as given."""


class UnknownSamplerError(RequestError):
    """A sampler or schedule name we do not know; the message lists the known ones."""


class InputImageError(RequestError):
    """An input image or mask (img2img, inpaint, ControlNet, IP-Adapter) that cannot be used as given."""


class InputImageChangedError(InputImageError):
    """A stored input image is missing, or its pixels no longer match the hash recorded for it."""


class PlanError(MlDiffusionError, ValueError):
    """A serialised plan that cannot be read back."""


class ModelError(MlDiffusionError):
    """A problem with a model reference or file."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """No model exists under the given reference."""


class ModelUnreadableError(ModelError):
    """The model exists but cannot be read (permissions, truncated or malformed file)."""


class UnsupportedModelError(ModelError):
    """A model family or layout this version cannot load."""


class ModelFamilyMismatchError(UnsupportedModelError):
    """A second model of a generation (the hires checkpoint) whose family is not the first model's: it could
    not continue the first pass's latents with the same LoRAs and embeddings."""


class AmbiguousModelError(ModelError):
    """A model name that fits several catalogued models; ``candidates`` holds their paths."""

    def __init__(self, message: str, candidates: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.candidates = candidates


class OfflineError(ModelError):
    """The model must come from the Hugging Face Hub, which cannot be reached."""


class GenerationError(MlDiffusionError):
    """The engine failed while executing a plan."""


class OutOfMemory(GenerationError):
    """The device ran out of memory while executing a plan; ``phase`` is "load", "encode", "denoise" or
    "decode"; ``tried`` the memory strategies attempted, in order, and ``estimated_peak_bytes`` the plan's
    estimate (both filled when the recovery ladder gave up)."""

    def __init__(
        self,
        message: str,
        phase: str = "denoise",
        *,
        tried: tuple[str, ...] = (),
        estimated_peak_bytes: int | None = None,
    ) -> None:
        super().__init__(message)
        self.phase = phase
        self.tried = tried
        self.estimated_peak_bytes = estimated_peak_bytes


class NonFiniteError(GenerationError):
    """NaN or infinite numbers came out of the ``stage`` ("latents" or "decoded image")."""

    def __init__(self, message: str, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


class GenerationCancelled(GenerationError):
    """Generation was cancelled between two denoising steps."""


class OutputError(MlDiffusionError):
    """An image or metadata file could not be written."""


class OutputNotWritableError(OutputError):
    """The output folder cannot be created or written to."""


class DiskFullError(OutputError):
    """The disk filled up while saving; nothing partial was left behind."""


class MetadataError(MlDiffusionError):
    """An image file whose metadata cannot be read."""


class DatabaseDamagedError(ConfigError):
    """The database file is damaged and could not be replaced by a fresh one."""


class PromptError(RequestError):
    """A prompt whose numbers cannot give a sane image: brackets nested too deep, absurd or infinite weights."""


class RatingError(RequestError):
    """A rating out of 1-5 (or not up/down), or a tag or note that is empty or too long."""


class UnknownGenerationError(RequestError):
    """An image or generation id that the history cannot match to a recorded generation."""


class HistoryError(MlDiffusionError):
    """The history file (generations, ratings) cannot be opened, written or restored."""


class HistoryImportError(HistoryError):
    """A history export (JSONL) that cannot be read back; nothing of it was imported."""


class ForeignMetadataError(MetadataError):
    """Another tool's metadata in an image (a ComfyUI graph, InvokeAI or Fooocus JSON) is malformed."""


class DeviceUnavailableError(RequestError):
    """A device (cuda, mps) asked for, or a plan made for it, that this machine does not have."""
