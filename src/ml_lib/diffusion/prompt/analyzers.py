"""The prompt analyzer a setting names ("rules", "semantic", "use", "ollama"), and semantic LoRA scoring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .analysis import PromptAnalysis
from .syntax import PromptDocument

__all__ = ["make_analyzer", "release_encoders", "semantic_similarity"]


def make_analyzer(name: str) -> Callable[[str | PromptDocument], PromptAnalysis]:
    """The prompt analyzer called ``name``: "rules", "semantic", "use" or "ollama"."""
    if name == "rules":
        from .analyzer import analyze_prompt

        return analyze_prompt
    if name == "semantic":
        from .semantic import SemanticAnalyzer

        return SemanticAnalyzer().analyze
    if name == "use":
        from .use_evidence import UseEvidenceAnalyzer

        return UseEvidenceAnalyzer().analyze
    if name == "ollama":
        from .ollama import OllamaAnalyzer

        return OllamaAnalyzer().analyze
    raise ConfigError(
        f"Unknown prompt analyzer {name!r}; ML_DIFFUSION_ANALYZER is rules, semantic, use or ollama."
    )


def semantic_similarity() -> Callable[[str, Any], Any] | None:
    """Sentence-embedding similarity when the ``semantic`` extra is installed (used to score LoRAs)."""
    from . import semantic

    return semantic.similarities if semantic.is_available() else None


def release_encoders() -> None:
    """Free the sentence encoder the "use" analyzer loaded (it loads again on the next prompt)."""
    from .use_evidence import release_shared_encoder

    release_shared_encoder()
