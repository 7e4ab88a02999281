"""A checkpoint reference (what follows ``--model``) → a :class:`ModelRef` with family, hash and config.

A reference is a diffusers folder, a single ``.safetensors`` checkpoint, or a Hugging Face Hub id
(``owner/name``). A single file of an unusual architecture needs a weightless diffusers config folder:
given explicitly (``config_dir``) or placed beside the checkpoint as ``<stem>.config/``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import re
from pathlib import Path

from .._assets import asset_path, local_path, portable_path
from ..catalog.families import CONFIG_FOLDERS, LOADABLE_FAMILIES, PIPELINE_GROUPS, Family, PredictionType
from ..catalog.hashing import HashCache, autov2
from ..catalog.header import header_of, read_header
from ..catalog.probe import FamilyGuess, detect_family, marked_for_tests, probe_diffusers_folder
from ..catalog.records import MODEL_SUFFIXES, PICKLE_SUFFIXES, ModelKind
from ..errors import ModelNotFoundError, OfflineError, UnsupportedModelError
from ..plan import ModelFormat, ModelRef
from .known import Lookup

__all__ = [
    "PICKLE_SUFFIXES",
    "ComponentSizes",
    "beside_config_dir",
    "clip_layers",
    "component_sizes",
    "hub_reachable",
    "is_hub_id",
    "refuse_pickled_folder",
    "resolve_model",
    "shipped_config_dir",
    "unet_parameters",
]

_LDM_UNET = "model.diffusion_model."
_ENCODERS = ("text_encoder", "text_encoder_2")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
log = logging.getLogger(__name__)


def is_hub_id(reference: str) -> bool:
    """Whether ``reference`` reads as a Hugging Face Hub id (``owner/name``, no file suffix)."""
    suffix = Path(reference).suffix.lower()  # "…-xl-base-1.0" is an id; "owner/x.safetensors" a file
    return bool(_HUB_ID.match(reference)) and suffix not in MODEL_SUFFIXES and suffix not in PICKLE_SUFFIXES


def refuse_pickled_folder(folder: Path, what: str) -> None:
    """Raise UnsupportedModelError when a diffusers folder (or a component of one) has pickled weights only.

    diffusers would fall back to ``torch.load`` on ``.bin`` files; they are refused before any loader.
    """
    for sub in (folder, *(p for p in folder.iterdir() if p.is_dir())):
        names = [p.name for p in sub.iterdir() if p.is_file()]
        pickled = [n for n in names if Path(n).suffix.lower() in PICKLE_SUFFIXES]
        if pickled and not any(n.endswith(".safetensors") for n in names):
            raise UnsupportedModelError(
                f"{what}: {sub / pickled[0]} is a pickle file, which could run code and is never opened; "
                "use a .safetensors version of the model."
            )


def shipped_config_dir(family: Family, prediction: PredictionType) -> Path | None:
    """The config folder shipped for a family, if any (for the demo, the demo model's own folder)."""
    if family is Family.DEMO:
        demo = asset_path("demo")
        return demo if (demo / "model_index.json").is_file() else None
    name = CONFIG_FOLDERS.get((family, prediction)) or CONFIG_FOLDERS.get((family, PredictionType.EPSILON))
    return asset_path("configs", name) if name is not None else None


def beside_config_dir(checkpoint: Path) -> Path:
    """Where a checkpoint's own config folder is looked for: ``<stem>.config/`` beside it."""
    return checkpoint.with_name(checkpoint.stem + ".config")


def _check_loadable(guess: FamilyGuess, what: str) -> None:
    if guess.family not in LOADABLE_FAMILIES:
        supported = ", ".join(sorted(f.value for f in LOADABLE_FAMILIES))
        raise UnsupportedModelError(
            f"{what} is a {guess.family.value} model ({guess.reason}); this version generates with "
            f"{supported} models only. Choose a checkpoint of one of those families."
        )


def _single_file(path: Path, config_dir: str | None, hashes: HashCache | None) -> ModelRef:
    guess = detect_family(header_of(path))
    _check_loadable(guess, str(path))
    config: Path | None
    if config_dir:
        config = Path(config_dir).expanduser()
        if not (config / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"Config folder {config} has no model_index.json; give a diffusers config folder."
            )
    elif beside_config_dir(path).is_dir():
        config = beside_config_dir(path)
    elif guess.standard:
        config = shipped_config_dir(guess.family, guess.prediction_type)
    else:
        raise UnsupportedModelError(
            f"{path} is a {guess.family.value} checkpoint with non-standard shapes; no shipped config fits. "
            f"Give its diffusers config folder with --config DIR, or place it beside the file as "
            f"{beside_config_dir(path).name}/."
        )
    if config_dir or config == beside_config_dir(path):
        # The header knows the layout; the model's own config folder knows the prediction type.
        assert config is not None
        folder = probe_diffusers_folder(config)
        if PIPELINE_GROUPS.get(folder.family) != PIPELINE_GROUPS.get(guess.family):
            raise UnsupportedModelError(
                f"Config folder {config} is for a {folder.family.value} pipeline but {path.name} is a "
                f"{guess.family.value} checkpoint ({guess.reason}); give the config folder of this model."
            )
        guess = dataclasses.replace(guess, prediction_type=folder.prediction_type)
    sha = hashes.sha256(path) if hashes else None
    return ModelRef(
        reference=portable_path(str(path.resolve())),
        format=ModelFormat.SINGLE_FILE,
        family=guess.family.value,
        prediction_type=guess.prediction_type.value,
        name=path.stem,
        hash=autov2(sha) if sha else None,
        config_dir=portable_path(str(config)) if config else None,
    )


#: Seconds the one reachability probe of the Hub waits before calling it unreachable.
HUB_PROBE_TIMEOUT = 3.0


def hub_reachable() -> bool:
    """Whether the Hugging Face Hub answers: False at once in offline mode (HF_HUB_OFFLINE), else after one
    request of at most HUB_PROBE_TIMEOUT seconds, without huggingface_hub's retries and their warnings."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT)
    except httpx2.TransportError as exc:
        log.info("the Hugging Face Hub at %s cannot be reached: %s", constants.ENDPOINT, exc)
        return False
    return True


def _hub(repo_id: str) -> ModelRef:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    local = not hub_reachable()  # unreachable: the local cache only, failing at once instead of retrying
    try:
        index = Path(hf_hub_download(repo_id, "model_index.json", local_files_only=local))
        for sub in (
            "scheduler/scheduler_config.json",
            "unet/config.json",
            *(f"{e}/config.json" for e in _ENCODERS),
        ):
            try:
                hf_hub_download(repo_id, sub, local_files_only=local)
            except EntryNotFoundError:
                continue
    except LocalEntryNotFoundError as exc:
        raise OfflineError(
            f"{repo_id!r} is not in the local Hugging Face cache and the Hub cannot be reached. "
            f"Download it where there is a network (`hf download {repo_id}`) or give a local path "
            "(if you meant a local path: it does not exist)."
        ) from exc
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:
        raise ModelNotFoundError(f"No diffusers model {repo_id!r} on the Hugging Face Hub.") from exc
    guess = probe_diffusers_folder(index.parent)
    _check_loadable(guess, repo_id)
    return ModelRef(repo_id, ModelFormat.HUB, guess.family.value, guess.prediction_type.value, repo_id)


def is_test_model(model: ModelRef) -> bool:
    """Whether a local checkpoint carries the test-model mark of ``ml_lib.diffusion.testing``."""
    if model.format is ModelFormat.HUB:
        return False
    return marked_for_tests(Path(local_path(model.reference)))


#: Where each component's tensors live: key prefixes in an A1111/LDM single file, sub-folders of a
#: diffusers folder.
_LDM_PARTS = {
    "unet": (_LDM_UNET,),
    "text_encoder": ("cond_stage_model.", "conditioner.embedders."),
    "vae": ("first_stage_model.",),
}
_FOLDER_PARTS = {"unet": ("unet",), "text_encoder": _ENCODERS, "vae": ("vae",)}


@dataclasses.dataclass(frozen=True, slots=True)
class ComponentSizes:
    """Parameter counts per component (text encoders summed), the bytes of the weight files and the
    floating dtype most of the weights are stored in ("float16", "bfloat16", "float32"; None: unknown)."""

    unet: int | None = None
    text_encoder: int | None = None
    vae: int | None = None
    file_bytes: int | None = None
    weight_dtype: str | None = None


_HEADER_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}


def _count(files: list[Path], prefixes: tuple[str, ...], dtypes: dict[str, int] | None = None) -> int:
    """Parameters under ``prefixes``; ``dtypes`` (when given) gains the count per floating dtype."""
    total = 0
    for path in files:
        stat = path.stat()
        count, by_dtype = _count_file(str(path), stat.st_size, stat.st_mtime_ns, prefixes)
        total += count
        if dtypes is not None:
            for dtype, n in by_dtype:
                dtypes[dtype] = dtypes.get(dtype, 0) + n
    return total


@functools.lru_cache(maxsize=256)
def _count_file(
    path: str, size: int, mtime_ns: int, prefixes: tuple[str, ...]
) -> tuple[int, tuple[tuple[str, int], ...]]:
    """Parameters under ``prefixes`` in one file, and their count per floating dtype; read once per file
    version (size and mtime in the key)."""
    del size, mtime_ns  # the cache key: a rewritten file is read again
    header = read_header(Path(path))
    total, by_dtype = 0, dict[str, int]()
    for name, t in header.tensors.items():
        if name.startswith(prefixes):
            n = math.prod(t.shape)
            total += n
            if t.dtype in _HEADER_DTYPES:
                by_dtype[_HEADER_DTYPES[t.dtype]] = by_dtype.get(_HEADER_DTYPES[t.dtype], 0) + n
    return total, tuple(sorted(by_dtype.items()))


def _weights(folder: Path) -> list[Path]:
    """A component folder's safetensors files, variants (``x.fp16.safetensors``) only when nothing else."""
    files = sorted(folder.glob("*.safetensors"))
    plain = [f for f in files if "." not in f.name.removesuffix(".safetensors")]
    return plain or files


def component_sizes(model: ModelRef) -> ComponentSizes:
    """Each component's parameter count from the weights' headers (no tensor data read); unknown for Hub models.

    A component whose tensors are absent (e.g. a single file without its VAE) is None.
    """
    dtypes: dict[str, int] = {}
    if model.format is ModelFormat.SINGLE_FILE:
        path = Path(local_path(model.reference))
        counts = {part: _count([path], prefixes, dtypes) for part, prefixes in _LDM_PARTS.items()}
        files = [path]
    elif model.format is ModelFormat.DIFFUSERS:
        root = Path(local_path(model.reference))
        counts, files = {}, []
        for part, folders in _FOLDER_PARTS.items():
            found = [f for folder in folders for f in _weights(root / folder)]
            counts[part] = _count(found, ("",), dtypes)
            files.extend(found)
    else:
        return ComponentSizes()
    size = sum(f.stat().st_size for f in files)
    return ComponentSizes(
        counts["unet"] or None,
        counts["text_encoder"] or None,
        counts["vae"] or None,
        size or None,
        max(dtypes, key=lambda d: dtypes[d]) if dtypes else None,
    )


def unet_parameters(model: ModelRef) -> int | None:
    """The denoiser's parameter count from the weights' headers (no tensor data read); None for Hub models."""
    return component_sizes(model).unet


def resolve_model(
    reference: str,
    *,
    config_dir: str | None = None,
    hashes: HashCache | None = None,
    lookup: Lookup | None = None,
) -> ModelRef:
    """Resolve a path, catalog name or Hub id; raise a typed error naming the fix when it cannot be used.

    A reference that is not an existing path is looked up by ``lookup`` first (the catalog's A1111 rules:
    file stem or sub-folder/stem, any case, or a hash; several matches raise AmbiguousModelError), then
    taken as a Hub id. A catalogued Hugging Face cache repo named by its id keeps going through the Hub rule.
    """
    path = Path(reference).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{path} is a folder without model_index.json: not a diffusers model. "
                "Point --model at a diffusers folder or a .safetensors checkpoint."
            )
        guess = probe_diffusers_folder(path)
        _check_loadable(guess, str(path))
        refuse_pickled_folder(path, str(path))
        return ModelRef(
            portable_path(str(path.resolve())),
            ModelFormat.DIFFUSERS,
            guess.family.value,
            guess.prediction_type.value,
            path.name,
        )
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsupportedModelError(
                f"{path} is a pickle checkpoint, which can run arbitrary code and is not loaded. "
                "Use a .safetensors version of the model."
            )
        return _single_file(path, config_dir, hashes)
    if lookup is not None:
        record = lookup(reference, ModelKind.CHECKPOINT)
        if record is not None and not (record.layout == "hf-cache" and record.name == reference):
            log.info("model %r is %s in the catalog", reference, record.path)
            return resolve_model(record.path, config_dir=config_dir, hashes=hashes)
    if is_hub_id(reference):
        return _hub(reference)
    raise ModelNotFoundError(
        f"No model at {reference!r}: not an existing file or folder, a catalogued model name, nor a Hub id "
        "(owner/name). Check the path, give a diffusers folder or .safetensors checkpoint, or add your "
        "model folder with `ml-diffusion models scan --root DIR` (or ML_DIFFUSION_MODELS)."
    )


def _layers(config: Path | None) -> int | None:
    if config is None or not config.is_file():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("num_hidden_layers")
    except (OSError, ValueError, AttributeError) as exc:
        log.info("cannot read the text encoder's layer count from %s: %s", config, exc)
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _hub_config(repo_id: str, name: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, f"{name}/config.json")
    return Path(found) if isinstance(found, str) else None


def clip_layers(model: ModelRef) -> int | None:
    """Layers of the model's text encoder(s), the fewest of SDXL's two (the most clip skip can take).

    Read from ``text_encoder*/config.json`` of the diffusers folder, the config folder of a single file,
    or the local Hub cache; None when no config says.
    """
    if model.format is ModelFormat.HUB:
        configs = [_hub_config(model.reference, name) for name in _ENCODERS]
    else:
        folder = model.config_dir if model.format is ModelFormat.SINGLE_FILE else model.reference
        configs = [Path(local_path(folder)) / name / "config.json" for name in _ENCODERS] if folder else []
    counts = [n for n in map(_layers, configs) if n is not None]
    return min(counts) if counts else None
