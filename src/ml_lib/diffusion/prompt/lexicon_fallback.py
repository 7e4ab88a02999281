"""The analyzer's fallback below its curated vocabularies: English nouns they do not know, read with the
WordNet lexicon (``noun_kinds.py``). Settings in ``vocab/content_types.json`` under ``lexicon``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .lexicon import PhraseMatch, Token, cue_index
from .noun_kinds import LexiconNoun, covered, lexicon_heads, lexicon_phrases, shadowed

__all__ = ["LexiconReading", "curated_family", "read_lexicon"]


@dataclass(frozen=True, slots=True)
class LexiconReading:
    """What the lexicon adds to one prompt: its multiword nouns (they shadow curated words of another
    family), subject matches (an animal, a person, a vehicle), and content points of focal kinds (a dish,
    an animal) and of settings (a room, a building, a lake: used only when no subject is evident)."""

    phrases: list[LexiconNoun] = field(default_factory=list)
    subjects: list[PhraseMatch] = field(default_factory=list)
    focal: dict[str, float] = field(default_factory=dict)
    settings: dict[str, float] = field(default_factory=dict)

    def hides(self, match: PhraseMatch, family: str | None, types: Mapping[str, Any]) -> bool:
        """Whether a curated match lies inside a longer lexicon noun of another family."""
        return shadowed(match.start, match.end, family, self.phrases, types["lexicon"]["families"])


def curated_family(key: str, label: str, types: Mapping[str, Any]) -> str | None:
    """The content family of a curated match: its content type, a subject's content ("cat" → animal,
    people → portrait), or None for a cue (weather, time …: any longer noun shadows it)."""
    if key.startswith("content:"):
        return label
    if key in ("noun", "tag", "crowd", "group"):
        if label in types["human_subjects"]:
            return "portrait"
        family: str | None = types["subject_content"].get(label, label)
        return family
    return None


def read_lexicon(
    tokens: list[Token],
    content: Iterable[PhraseMatch],
    subjects: Iterable[PhraseMatch],
    skip: set[int],
    types: Mapping[str, Any],
    *,
    english: bool,
) -> LexiconReading:
    """Lexicon nouns heading a phrase in ``tokens`` that no curated match covers (``content`` terms,
    ``subjects`` nouns, cue words) and that are not negated or idle (``skip``). Nothing for a prompt not in
    English."""
    if not english:
        return LexiconReading()
    curated: list[tuple[PhraseMatch, str | None]] = [(m, m.label) for m in content]
    curated += [(m, curated_family(m.key, m.label, types)) for m in subjects]
    curated += [(m, None) for m in cue_index().find(tokens)]
    config = types["lexicon"]
    families = config["families"]
    phrases = lexicon_phrases(tokens)
    reading = LexiconReading(phrases)
    for noun in lexicon_heads(tokens, phrases, skip | covered(curated, phrases, families)):
        weight = tokens[noun.start].weight
        label = config["content"].get(noun.kind)
        if label is not None:
            points = config["points"] * max(0.0, min(weight, 2.0))
            target = reading.settings if label in types["setting_types"] else reading.focal
            target[label] = max(target.get(label, 0.0), points)
        subject = config["subjects"].get(noun.kind, noun.kind)
        if subject:
            reading.subjects.append(
                PhraseMatch("noun", subject, 0.0, noun.term, noun.start, noun.end, weight)
            )
    return reading
