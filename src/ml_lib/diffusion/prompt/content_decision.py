"""The content type from evidence points: medium over subject over "photo" (``vocab/content_types.json``), or
a decision made elsewhere (the USE classifier) put in the rules' place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .analysis import LabelScore
from .lexicon import load_vocab

__all__ = ["ContentDecision", "decide_content_type", "overrule"]


@dataclass(frozen=True, slots=True)
class ContentDecision:
    """The content type chosen from evidence points, its confidence, every type's support, and the
    subject type (portrait, landscape …) behind a medium type when one is evident."""

    content_type: str
    confidence: float
    scores: tuple[LabelScore, ...]
    subject_type: str | None


def decide_content_type(evidence: Mapping[str, float]) -> ContentDecision:
    """Medium over subject over "photo"; among subjects, a focal one (person, animal, thing) over its
    setting (landscape, architecture, interior). Thresholds live in ``vocab/content_types.json``."""
    data = load_vocab("content_types")
    settings, discount = set(data["setting_types"]), data["setting_discount"]
    focal = max((evidence.get(label, 0.0) for label in data["focal_types"]), default=0.0)

    def weighed(label: str) -> float:
        value = evidence.get(label, 0.0)
        return value * discount if label in settings and focal >= data["medium_threshold"] else value

    def best(labels: list[str]) -> tuple[str, float]:
        return max(((label, weighed(label)) for label in labels), key=lambda kv: kv[1])

    medium, medium_score = best(data["medium_types"])
    subject, subject_score = best(data["subject_types"])
    subject_type = subject if subject_score >= data["subject_threshold"] else None
    dominant, dominant_score = best(data["dominant_types"])
    if dominant_score >= data["medium_threshold"]:
        chosen, score = dominant, dominant_score
    elif medium_score >= data["medium_threshold"]:
        chosen, score = medium, medium_score
    elif subject_type is not None:
        chosen, score = subject, subject_score
    else:
        chosen, score = data["fallback"], evidence.get(data["fallback"], 0.0)
    rival = max((weighed(k) for k in evidence if k not in (chosen, data["fallback"])), default=0.0)
    confidence = 0.25 if score <= 0 else min(0.97, 0.3 + 0.7 * score / (score + rival + 1.5))
    support = {label: value / (value + 2.0) for label, value in evidence.items() if value > 0}
    support[chosen] = max(support.get(chosen, 0.0), confidence)
    ranked = sorted(support.items(), key=lambda kv: (kv[0] != chosen, -kv[1]))
    scores = tuple(LabelScore(label, round(value, 3)) for label, value in ranked)
    return ContentDecision(chosen, round(confidence, 3), scores, subject_type)


def overrule(decision: ContentDecision, label: str, confidence: float) -> ContentDecision:
    """``decision`` with ``label`` chosen instead, at ``confidence``; the rules' support for the other types
    stays, and so does their subject type behind a medium ("anime" of a portrait keeps the portrait's frame)
    unless ``label`` is a subject type itself."""
    rest = tuple(s for s in decision.scores if s.label != label)
    scores = (LabelScore(label, round(confidence, 3)), *rest)
    subject = label if label in load_vocab("content_types")["subject_types"] else decision.subject_type
    return ContentDecision(label, round(confidence, 3), scores, subject)
