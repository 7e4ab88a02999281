"""Built-in models the package ships (the demo model, its style LoRA and its ControlNet) as model folders.

Every scan also walks these, so the catalog lists them like any other model (layout ``builtin``, family
``demo``), ``--model demo`` and ``<lora:dmoutline:1>`` resolve through it, and the recommender sees the
LoRA. Nothing here loads weights.
"""

from __future__ import annotations

import time
from pathlib import Path

from .._assets import asset_path
from .identify import identify
from .layouts import ModelDir, Problem
from .records import ModelKind, ModelRecord
from .walk import walk

__all__ = ["BUILTIN_LAYOUT", "builtin_dirs", "builtin_records", "builtin_root"]

BUILTIN_LAYOUT = "builtin"


def builtin_root() -> Path:
    """The folder the built-in records are filed under (the package's ``assets/demo``)."""
    return asset_path("demo").absolute()


def builtin_dirs() -> tuple[ModelDir, ...]:
    """The model folders of the built-ins present in this installation (none when the demo is absent)."""
    root = builtin_root()
    dirs = []
    if (root / "model_index.json").is_file():
        dirs.append(ModelDir(root, root, BUILTIN_LAYOUT, ModelKind.CHECKPOINT, label="demo"))
    if (root / "lora").is_dir():
        dirs.append(ModelDir(root / "lora", root, BUILTIN_LAYOUT, ModelKind.LORA))
    if (root / "controlnet" / "config.json").is_file():
        dirs.append(
            ModelDir(root / "controlnet", root, BUILTIN_LAYOUT, ModelKind.CONTROLNET, label="demo-controlnet")
        )
    return tuple(dirs)


def builtin_records() -> tuple[ModelRecord, ...]:
    """The built-ins' records, probed from their headers in memory (nothing is written; a few ms)."""
    visited: set[tuple[int, int]] = set()
    problems: list[Problem] = []
    now = time.time()
    found = [f for d in builtin_dirs() for f in walk(d, visited, problems)]
    return tuple(r for f in found if (r := identify(f, now)) is not None)
