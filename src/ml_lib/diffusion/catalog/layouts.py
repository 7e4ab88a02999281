"""Which folders of a root hold models, and of what kind: A1111 / Forge, ComfyUI (and its
``extra_model_paths.yaml``), the Hugging Face cache, or a plain folder of files.

A root may be a web-UI folder, its ``models`` folder, a ComfyUI folder, an ``extra_model_paths.yaml``
file, a Hugging Face hub cache, or any folder (walked whole, kinds from the headers alone). Model files
lying loose in a root whose layout is recognised are catalogued too (layout ``loose``: that folder's own
files only, kinds from the headers): a ``loras/`` folder must not hide the checkpoints beside it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .records import ModelKind

__all__ = [
    "A1111_FOLDERS",
    "COMFYUI_FOLDERS",
    "Discovery",
    "ModelDir",
    "Problem",
    "discover",
    "extra_model_paths",
]

log = logging.getLogger(__name__)

#: A1111/Forge folders (relative to the web-UI folder) and the kind of model each holds.
A1111_FOLDERS: dict[str, ModelKind] = {
    "models/Stable-diffusion": ModelKind.CHECKPOINT,
    "models/Lora": ModelKind.LORA,
    "models/LyCORIS": ModelKind.LORA,
    "models/ControlNet": ModelKind.CONTROLNET,
    "models/VAE": ModelKind.VAE,
    "models/text_encoder": ModelKind.TEXT_ENCODER,
    "models/ipadapter": ModelKind.IP_ADAPTER,
    "models/clip_vision": ModelKind.IMAGE_ENCODER,
    "embeddings": ModelKind.EMBEDDING,
    "extensions/sd-webui-controlnet/models": ModelKind.CONTROLNET,
}
#: ComfyUI folder names (under ``models/``, and the keys of ``extra_model_paths.yaml``); None: any kind.
COMFYUI_FOLDERS: dict[str, ModelKind | None] = {
    "checkpoints": ModelKind.CHECKPOINT,
    "loras": ModelKind.LORA,
    "controlnet": ModelKind.CONTROLNET,
    "t2i_adapter": ModelKind.CONTROLNET,
    "vae": ModelKind.VAE,
    "embeddings": ModelKind.EMBEDDING,
    "ipadapter": ModelKind.IP_ADAPTER,
    "clip_vision": ModelKind.IMAGE_ENCODER,
    "unet": ModelKind.UNET,
    "diffusion_models": ModelKind.UNET,
    "clip": ModelKind.TEXT_ENCODER,
    "text_encoders": ModelKind.TEXT_ENCODER,
    "diffusers": None,
}


@dataclass(frozen=True, slots=True)
class ModelDir:
    """A folder to walk: where it is, which root and layout it came from, the kind it should hold."""

    path: Path
    root: Path
    layout: str
    kind: ModelKind | None = None
    label: str = ""  # prefix of the names found in it (the repo id for the Hugging Face cache)
    recursive: bool = True  # False: only the files directly in ``path`` (loose files of a layout root)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the scan could not read, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Discovery:
    """The model folders found in a root, and what could not be read."""

    dirs: tuple[ModelDir, ...]
    problems: tuple[Problem, ...]


def _expand(text: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(text.strip())))


def extra_model_paths(yaml_file: Path, root: Path) -> Discovery:
    """The folders named by a ComfyUI ``extra_model_paths.yaml`` (a111 / comfyui / any section)."""
    import yaml

    dirs: list[ModelDir] = []
    problems: list[Problem] = []
    try:
        data = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return Discovery((), (Problem(str(yaml_file), f"cannot read extra_model_paths.yaml: {exc}"),))
    if not isinstance(data, dict):
        return Discovery(
            (), (Problem(str(yaml_file), "extra_model_paths.yaml is not a mapping of sections"),)
        )
    for section, conf in data.items():
        if not isinstance(conf, dict):
            problems.append(Problem(str(yaml_file), f"section {section!r} is not a mapping; skipped"))
            continue
        base = _expand(str(conf.get("base_path") or "."))
        base = base if base.is_absolute() else yaml_file.parent / base
        for key, value in conf.items():
            if key in ("base_path", "is_default") or key not in COMFYUI_FOLDERS:
                continue
            items = value if isinstance(value, list) else str(value or "").splitlines()
            for item in (str(i).strip() for i in items):
                if item:
                    path = _expand(item)
                    path = path if path.is_absolute() else base / path
                    dirs.append(ModelDir(path, root, f"extra-paths:{section}", COMFYUI_FOLDERS[key]))
    return Discovery(tuple(dirs), tuple(problems))


def _hf_cache(root: Path) -> Discovery:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(root)
    except (CacheNotFound, OSError, ValueError) as exc:
        return Discovery((), (Problem(str(root), f"not a readable Hugging Face cache: {exc}"),))
    problems = [Problem(str(root), f"Hugging Face cache: {w}") for w in info.warnings]
    dirs = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revision = max(repo.revisions, key=lambda r: r.last_modified)
        dirs.append(ModelDir(Path(revision.snapshot_path), root, "hf-cache", None, repo.repo_id))
    return Discovery(tuple(dirs), tuple(problems))


def _is_hf_cache(root: Path) -> bool:
    try:
        return any(e.name.startswith("models--") and e.is_dir() for e in os.scandir(root))
    except OSError:
        return False


def _has_loose_model_files(root: Path) -> bool:
    """Whether ``root`` itself holds model files (not only folders)."""
    from .records import MODEL_SUFFIXES

    try:
        with os.scandir(root) as it:
            return any(
                not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in MODEL_SUFFIXES
                for e in it
            )
    except OSError:
        return False


def discover(root: Path) -> Discovery:
    """The model folders of ``root`` by layout (a plain walk of ``root`` when no layout is recognised)."""
    root = root.expanduser()
    if root.is_file() and root.suffix.lower() in (".yaml", ".yml"):
        return extra_model_paths(root, root)
    if not root.is_dir():
        return Discovery((), (Problem(str(root), "model root does not exist or is not a folder"),))
    dirs: list[ModelDir] = []
    problems: list[Problem] = []
    webui = root if (root / "models" / "Stable-diffusion").is_dir() else None
    if webui is None and root.name == "models" and (root / "Stable-diffusion").is_dir():
        webui = root.parent
    if webui is not None:
        for rel, kind in A1111_FOLDERS.items():
            if (webui / rel).is_dir():
                dirs.append(ModelDir(webui / rel, root, "a1111", kind))
    comfy = next(
        (c for c in (root / "models", root) if (c / "checkpoints").is_dir() or (c / "loras").is_dir()), None
    )
    if comfy is not None and webui is None:
        for name, comfy_kind in COMFYUI_FOLDERS.items():
            if (comfy / name).is_dir():
                dirs.append(ModelDir(comfy / name, root, "comfyui", comfy_kind))
    if (root / "extra_model_paths.yaml").is_file():
        extra = extra_model_paths(root / "extra_model_paths.yaml", root)
        dirs += extra.dirs
        problems += extra.problems
    if not dirs and _is_hf_cache(root):
        return _hf_cache(root)
    if not dirs:
        dirs.append(ModelDir(root, root, "plain", None))
    elif all(d.path != root for d in dirs) and _has_loose_model_files(root):
        dirs.append(ModelDir(root, root, "loose", None, recursive=False))
    missing = [d for d in dirs if not d.path.is_dir()]
    problems += [Problem(str(d.path), f"{d.layout} model folder does not exist") for d in missing]
    return Discovery(tuple(d for d in dirs if d not in missing), tuple(problems))
