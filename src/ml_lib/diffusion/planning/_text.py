"""Tokens of model names, tags and prompts for catalog matching (private helper)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..catalog.records import ModelRecord

__all__ = ["record_text", "tokens"]

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_STOP_WORDS = (
    "a an and the of in on at to with by for from is are it its as or be this that very best "
    "high quality masterpiece detailed lora model v1 v2 v3 v4 v5 sd sd1 sd15 sdxl xl safetensors "
    "version style by ultra"
)
_STOP = frozenset(_STOP_WORDS.split())


def tokens(text: str) -> list[str]:
    """Lower-case words (``_``/``-``/camelCase split), without stop words or one-letter words."""
    return [
        w
        for w in _WORD.findall(_CAMEL.sub(" ", text).lower())
        if len(w) > 1 and w not in _STOP and len(w) < 30
    ]


def record_text(record: ModelRecord) -> Iterable[str]:
    """A record's descriptive strings: names, derivative, Civitai name/base model/tags, description."""
    yield record.name
    yield record.rel_name
    if record.info.derivative:
        yield record.info.derivative
    if record.info.title:
        yield record.info.title
    side = record.sidecar
    if side is not None:
        for text in (side.civitai_name, side.base_model, side.description, side.notes):
            if text:
                yield text
        yield from side.tags
