"""Prompt intelligence: A1111 syntax (:mod:`.syntax`) and analysis (:mod:`.analyzer`), pure Python.

Names are imported lazily; the optional extras live in :mod:`.semantic` and :mod:`.ollama`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analyzer import PromptAnalysis, analyze_prompt
    from .attention import WeightedChunk, parse_prompt_attention
    from .networks import NetworkRef
    from .syntax import EmbeddingRef, PromptDocument, ScheduleEntry, SubPrompt, parse_prompt

__all__ = [
    "EmbeddingRef",
    "NetworkRef",
    "PromptAnalysis",
    "PromptDocument",
    "ScheduleEntry",
    "SubPrompt",
    "WeightedChunk",
    "analyze_prompt",
    "parse_prompt",
    "parse_prompt_attention",
]

_WHERE = {
    "EmbeddingRef": "syntax",
    "NetworkRef": "networks",
    "PromptAnalysis": "analyzer",
    "PromptDocument": "syntax",
    "ScheduleEntry": "syntax",
    "SubPrompt": "syntax",
    "WeightedChunk": "attention",
    "analyze_prompt": "analyzer",
    "parse_prompt": "syntax",
    "parse_prompt_attention": "attention",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
