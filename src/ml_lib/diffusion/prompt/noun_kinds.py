"""The WordNet lexicon: what kind of thing an English noun names, for words the curated vocabularies lack.

``vocab/wordnet_kinds.json`` is generated from WordNet 3.0 by ``scripts/build_lexicon.py`` (licence in
``vocab/WORDNET_LICENSE``): single nouns with their kind ("tiramisu" food, "credenza" interior, "capybara"
wild animal) and multiword nouns whose kind differs from their words' ("hot dog" food, "teddy bear" none).
The analyzer uses it only below its own vocabularies: a word they match never reaches the lexicon, while a
longer lexicon noun around a matched word shadows it ("hot dog" shows no dog). Read once, on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .lexicon import PhraseMatch, Token, load_vocab

__all__ = [
    "LexiconNoun",
    "NounLexicon",
    "covered",
    "lexicon_heads",
    "lexicon_phrases",
    "noun_lexicon",
    "shadowed",
]

#: Words after which the word before ends its noun phrase ("tiramisu on a plate", "a credenza with …").
_PHRASE_ENDS = frozenset(
    {
        "of", "with", "on", "in", "at", "and", "or", "by", "under", "over", "near", "from", "into", "onto",
        "beside", "behind", "inside", "for", "to", "against", "through", "during", "while", "atop", "above",
        "below", "between", "among", "across", "next", "is", "are", "sits", "stands", "as", "that", "which",
        "full", "filled", "topped", "served", "covered", "surrounded", "made", "lit", "seen", "shot",
    }
)  # fmt: skip
_MAX_PHRASE = 4
_POSSESSIVE = ("'s", "\u2019s")
_NONE = "-"


@dataclass(frozen=True, slots=True)
class LexiconNoun:
    """A lexicon noun found in the tokens: ``kind`` is None for a phrase that only shadows its words."""

    start: int
    end: int
    kind: str | None
    term: str


class NounLexicon:
    """Lookups over the generated file: single words, multiword phrases and irregular plurals."""

    def __init__(self, data: dict[str, object]) -> None:
        """``data``: the parsed ``wordnet_kinds.json`` (``words``, ``phrases``, ``plurals``)."""
        words, phrases, plurals = data["words"], data["phrases"], data["plurals"]
        if not (isinstance(words, dict) and isinstance(phrases, dict) and isinstance(plurals, dict)):
            raise ConfigError(
                "wordnet_kinds.json: words, phrases and plurals must be objects "
                "(regenerate it with scripts/build_lexicon.py)"
            )
        self._words = {word: kind for kind, terms in words.items() for word in terms}
        self._phrases: dict[tuple[str, ...], str | None] = {
            tuple(term.split()): (None if kind == _NONE else kind)
            for kind, terms in phrases.items()
            for term in terms
        }
        self._plurals: dict[str, str] = dict(plurals)

    def singular(self, token: Token) -> str | None:
        """The lexicon's form of ``token`` ("tomatoes" → "tomato", "geese" → "goose"), or None."""
        raw = token.raw
        for form in (raw, token.stem, self._plurals.get(raw), raw[:-2] if raw.endswith("es") else None):
            if form and form in self._words:
                return form
        return None

    def word_kind(self, token: Token) -> str | None:
        """The kind of a single word, or None when the lexicon has no kind for it."""
        form = self.singular(token)
        return None if form is None else self._words[form]

    def phrase_at(self, tokens: Sequence[Token], start: int) -> LexiconNoun | None:
        """The longest multiword lexicon noun starting at ``start`` (its last word may be plural)."""
        for size in range(min(_MAX_PHRASE, len(tokens) - start), 1, -1):
            span = tokens[start : start + size]
            if any(t.is_separator for t in span):
                continue
            head = span[-1]
            for last in {head.raw, head.stem, self._plurals.get(head.raw, head.raw)}:
                key = (*(t.raw for t in span[:-1]), last)
                if key in self._phrases:
                    return LexiconNoun(start, start + size, self._phrases[key], " ".join(key))
        return None


@functools.cache
def noun_lexicon() -> NounLexicon:
    """The lexicon of ``vocab/wordnet_kinds.json`` (read once per process)."""
    return NounLexicon(load_vocab("wordnet_kinds"))


def lexicon_phrases(tokens: Sequence[Token]) -> list[LexiconNoun]:
    """Multiword lexicon nouns in ``tokens``, left to right, longest first and not overlapping."""
    lexicon = noun_lexicon()
    out: list[LexiconNoun] = []
    i = 0
    while i < len(tokens):
        found = lexicon.phrase_at(tokens, i)
        if found is None:
            i += 1
        else:
            out.append(found)
            i = found.end
    return out


def _ends_phrase(tokens: Sequence[Token], end: int) -> bool:
    if end >= len(tokens):
        return True
    following = tokens[end]
    return following.is_separator or following.raw in _PHRASE_ENDS or following.raw.endswith(("ing", "ed"))


def lexicon_heads(
    tokens: Sequence[Token], phrases: Sequence[LexiconNoun], skip: set[int]
) -> list[LexiconNoun]:
    """Kinded lexicon nouns that head a noun phrase (the phrase ends right after them: "a bowl of pho",
    "tiramisu on a plate"; "orange" of "orange dress" is no head; a possessor heads its own: "a toad's eye"),
    none of whose words is in ``skip`` (matched by the curated vocabularies, negated or idle). A multiword
    noun is read whole."""
    lexicon = noun_lexicon()
    inside = {k for phrase in phrases for k in range(phrase.start, phrase.end)}
    out = [
        phrase
        for phrase in phrases
        if phrase.kind is not None
        and _ends_phrase(tokens, phrase.end)
        and not any(k in skip for k in range(phrase.start, phrase.end))
    ]
    for i, token in enumerate(tokens):
        if i in skip or i in inside or token.is_separator:
            continue
        if not _ends_phrase(tokens, i + 1) and not token.raw.endswith(_POSSESSIVE):
            continue  # a possessor heads its own phrase: "a toad's golden eye" shows the toad
        kind = lexicon.word_kind(token)
        if kind is not None:
            out.append(LexiconNoun(i, i + 1, kind, lexicon.singular(token) or token.stem))
    return sorted(out, key=lambda noun: noun.start)


def shadowed(start: int, end: int, family: str | None, phrases: Sequence[LexiconNoun], families: Any) -> bool:
    """Whether a curated match over ``start:end`` (of content ``family``) lies inside a longer lexicon noun of
    another family ("dog" of "hot dog"; not "girl" of "little girl"). ``families``: kind → family."""
    return any(
        p.start <= start
        and end <= p.end
        and p.end - p.start > end - start
        and (p.kind is None or families.get(p.kind, p.kind) != family)
        for p in phrases
    )


def covered(
    matches: Iterable[tuple[PhraseMatch, str | None]], phrases: Sequence[LexiconNoun], families: Any
) -> set[int]:
    """Token indices of curated ``matches`` (with their families) that no longer lexicon noun shadows."""
    out: set[int] = set()
    for match, family in matches:
        if match.start >= 0 and not shadowed(match.start, match.end, family, phrases, families):
            out.update(range(match.start, match.end))
    return out
