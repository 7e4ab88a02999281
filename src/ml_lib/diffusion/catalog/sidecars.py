"""Files beside a model: A1111's ``<name>.json`` (user metadata), Civitai ``<name>.civitai.info`` /
``<name>.info`` / ``<name>.cm-info.json``, and preview images (``<name>.png``, ``<name>.preview.png`` …).

A malformed sidecar never fails the model: its problem is noted in :attr:`Sidecar.problems`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .records import Sidecar

__all__ = ["MAX_SIDECAR_BYTES", "read_sidecar", "sidecar_files", "sidecar_signature"]

log = logging.getLogger(__name__)

MAX_SIDECAR_BYTES = 8 * 1024 * 1024
_A1111 = (".json",)
_CIVITAI = (".civitai.info", ".info", ".cm-info.json")
_IMAGES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
_PREVIEWS = tuple(s for ext in _IMAGES for s in (".preview" + ext, ext))


def sidecar_files(stem: str, siblings: Mapping[str, Any] | frozenset[str]) -> tuple[str, ...]:
    """Names of the sidecar and preview files of ``stem`` among ``siblings`` (names in its folder)."""
    return tuple(stem + s for s in (*_A1111, *_CIVITAI, *_PREVIEWS) if stem + s in siblings)


def sidecar_signature(stem: str, siblings: Mapping[str, os.DirEntry[str]]) -> str:
    """``name:size:mtime_ns`` of each sidecar file: changes when one is added, edited or removed."""
    parts = []
    for name in sidecar_files(stem, siblings):
        try:
            st = siblings[name].stat()
        except OSError:
            continue
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _load(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            problems.append(f"{path.name}: over {MAX_SIDECAR_BYTES // 2**20} MB, not read")
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{path.name}: {exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: not a JSON object")
        return None
    return data


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _words(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(str(v).strip() for v in value if isinstance(v, str) and v.strip()))


def _weight(value: Any, problems: list[str], name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: 'preferred weight' {value!r} is not a number")
        return None


def read_sidecar(model: Path, siblings: Mapping[str, Any] | frozenset[str]) -> Sidecar | None:
    """What the sidecar files of ``model`` say (None when it has none)."""
    stem, folder = model.stem if model.suffix else model.name, model.parent
    files = sidecar_files(stem, siblings)
    if not files:
        return None
    problems: list[str] = []
    fields: dict[str, Any] = {"files": files}
    fields["previews"] = tuple(f for f in files if f.endswith(_IMAGES))
    if stem + ".json" in files and (a1111 := _load(folder / (stem + ".json"), problems)) is not None:
        fields.update(
            description=_text(a1111, "description"),
            sd_version=_text(a1111, "sd version"),
            activation_text=_text(a1111, "activation text"),
            preferred_weight=_weight(a1111.get("preferred weight"), problems, stem + ".json"),
            negative_text=_text(a1111, "negative text"),
            notes=_text(a1111, "notes"),
        )
    for suffix in _CIVITAI:
        if stem + suffix not in files or (info := _load(folder / (stem + suffix), problems)) is None:
            continue
        model_part = info.get("model")
        if not isinstance(model_part, dict):
            model_part = {}
        nsfw = model_part.get("nsfw", info.get("nsfw"))
        fields.update(
            civitai_name=_text(model_part, "name") or _text(info, "modelName"),
            civitai_version=_text(info, "name"),
            base_model=_text(info, "baseModel"),
            trained_words=_words(info.get("trainedWords")),
            tags=_words(model_part.get("tags", info.get("tags"))),
            nsfw=nsfw if isinstance(nsfw, bool) else None,
        )
        break
    if problems:
        log.info("sidecar problems for %s: %s", model, "; ".join(problems))
    return Sidecar(problems=tuple(problems), **fields)
