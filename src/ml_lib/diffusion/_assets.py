"""Where the package's shipped data lives (config folders, tokenizer, the demo model); no I/O here."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["asset_path"]


def asset_path(*parts: str) -> Path:
    """``assets/<parts…>`` inside the installed package (whether or not it exists)."""
    return Path(str(importlib.resources.files("ml_lib.diffusion") / "assets")).joinpath(*parts)
