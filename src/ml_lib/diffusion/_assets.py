"""Where the package's shipped data lives (config folders, tokenizer, the demo model), and the portable
``builtin:`` references plans use for the built-in models, so an image made with the demo model
reproduces wherever the package is installed; no I/O here."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["BUILTIN_SCHEME", "asset_path", "local_path", "portable_path"]

#: Prefix of a reference to a file or folder under the package's built-in models (``assets/demo``).
BUILTIN_SCHEME = "builtin:"


def asset_path(*parts: str) -> Path:
    """``assets/<parts…>`` inside the installed package (whether or not it exists)."""
    return Path(str(importlib.resources.files("ml_lib.diffusion") / "assets")).joinpath(*parts)


def portable_path(path: str) -> str:
    """``builtin:demo[/…]`` for a path inside the built-in models' folder; any other path unchanged."""
    root = asset_path("demo").absolute()
    try:
        rel = Path(path).absolute().relative_to(root)
    except ValueError:
        return path
    return BUILTIN_SCHEME + "/".join(("demo", *rel.parts))


def local_path(reference: str) -> str:
    """The file or folder a ``builtin:`` reference names in this installation; other references unchanged."""
    if not reference.startswith(BUILTIN_SCHEME):
        return reference
    parts = reference[len(BUILTIN_SCHEME) :].split("/")
    if parts[0] != "demo" or any(p in ("", ".", "..") for p in parts):
        return reference  # not a built-in this version knows: left to fail as a missing path
    return str(asset_path(*parts))
