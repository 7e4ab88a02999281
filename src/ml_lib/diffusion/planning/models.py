"""Checkpoint choice: the catalog checkpoint that best fits the prompt's content type and styles.

A checkpoint is scored by what its name, derivative and Civitai sidecar (name, base model, tags,
description) say about the content it is made for, against the analysis' content-type scores and
style cues; a small family preference, a memory-fit hook and a learned-prior hook are added. Ties are
broken by name, so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..catalog.families import LOADABLE_FAMILIES, Family
from ..catalog.records import ModelKind, ModelRecord, Status
from ..plan import Decision, Source
from ..prompt.analysis import PromptAnalysis
from ._text import record_text, tokens

__all__ = [
    "CHOOSABLE_FAMILIES",
    "DEMO_REASON",
    "FAMILY_PREFERENCE",
    "CheckpointChoice",
    "ScoreHook",
    "choose_checkpoint",
    "neutral",
]

ScoreHook = Callable[[ModelRecord], float]
DEMO_REASON = (
    "the built-in demo model (64x64 toy shapes): no other checkpoint is given or catalogued; pass --model "
    "PATH, or set ML_DIFFUSION_MODELS to your model folders and run `ml-diffusion models scan`"
)
#: What an automatic choice may pick: every loadable family but the SDXL refiner (img2img only).
CHOOSABLE_FAMILIES = LOADABLE_FAMILIES - {Family.SDXL_REFINER}
#: The demo model is a fallback: any real checkpoint that fits scores above it.
FAMILY_PREFERENCE = {Family.SDXL: 0.15, Family.SD1: 0.05, Family.SD2: 0.0, Family.DEMO: -10.0}
_MISFIT = 0.3  # what a specialist loses before its content types' scores count

#: Content types, and the words in checkpoint names/tags that say a model is made for them.
_GROUP_TEXT = (
    ("photo portrait landscape architecture interior product food animal vehicle",
     "realistic realism photo photoreal photorealistic photography real reality raw juggernaut "
     "epicrealism realvis realvisxl cyberrealistic absolutereality"),
    ("anime comic illustration",
     "anime manga illustrious pony noob noobai animagine waifu cartoon toon counterfeit anything 2d"),
    ("3d_render", "3d render cgi pixar disney"),
    ("painting concept_art illustration", "art artistic painting dreamshaper fantasy concept oil painterly"),
    ("pixel_art", "pixel pixelart 8bit"),
)  # fmt: skip
_GROUPS = tuple((frozenset(t.split()), frozenset(k.split())) for t, k in _GROUP_TEXT)


@dataclass(frozen=True, slots=True)
class CheckpointChoice:
    """The chosen checkpoint, its score and why."""

    record: ModelRecord
    score: float
    reason: str

    @property
    def decision(self) -> Decision:
        """The Decision recorded in the plan."""
        return Decision("model", self.record.name, Source.CATALOG, self.reason)


def neutral(record: ModelRecord) -> float:
    """The default hook: no opinion."""
    del record
    return 0.0


def _fit(words: set[str], analysis: PromptAnalysis) -> tuple[float, list[str]]:
    score, why = 0.0, []
    for types, keys in _GROUPS:
        hit = sorted(words & keys)
        if hit:
            main = analysis.content_type in types
            support = max(analysis.score(t) for t in types) * (1.0 if main else 0.5)
            score += support - _MISFIT
            if main:
                why.append(f"{'/'.join(hit)} suits {analysis.content_type}")
    styles = sorted({w for label in analysis.style_labels for w in tokens(label)} & words)
    if styles:
        score += 0.2 * len(styles)
        why.append(f"style {', '.join(styles)}")
    return score, why


def choose_checkpoint(
    analysis: PromptAnalysis,
    records: Iterable[ModelRecord],
    *,
    memory_fit: ScoreHook = neutral,
    prior: ScoreHook = neutral,
) -> CheckpointChoice | None:
    """The best usable checkpoint (status ok, a choosable family) for ``analysis``; None if none."""
    best: tuple[float, str, ModelRecord, list[str]] | None = None
    for record in records:
        if (
            record.kind is not ModelKind.CHECKPOINT
            or record.status is not Status.OK
            or record.family not in CHOOSABLE_FAMILIES
            or record.info.test_model  # random weights: only when named
        ):
            continue
        words = {w for text in record_text(record) for w in tokens(text)}
        score, why = _fit(words, analysis)
        score += FAMILY_PREFERENCE[record.family]
        memory, learned = memory_fit(record), prior(record)
        score += memory + learned
        if memory:
            why.append(f"memory fit {memory:+.2f}")
        if learned:
            why.append(f"learned preference {learned:+.2f}")
        key = (-score, record.name.lower())
        if best is None or key < (-best[0], best[1]):
            best = (score, record.name.lower(), record, why)
    if best is None:
        return None
    score, _, record, why = best
    if record.family is Family.DEMO:
        return CheckpointChoice(record, score, DEMO_REASON)
    reason = "; ".join(why) or "no content-specific evidence; best general candidate"
    reason = f"{reason}; {record.family.value} (score {score:.2f}) for content type {analysis.content_type}"
    return CheckpointChoice(record, score, reason)
