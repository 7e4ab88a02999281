"""Prompt language from scripts and function words (offline, no model)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .lexicon import Token, load_vocab

__all__ = ["LanguageGuess", "detect_language"]


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """ISO 639-1 code and a confidence (0 to 1)."""

    code: str
    confidence: float


@functools.cache
def _tables() -> tuple[tuple[tuple[str, re.Pattern[str]], ...], dict[str, frozenset[str]], dict[str, str]]:
    data = load_vocab("languages")
    scripts = tuple((code, re.compile(f"[{low}-{high}]")) for code, low, high in data["scripts"])
    stopwords = {code: frozenset(words) for code, words in data["stopwords"].items()}
    distinctive = {char: code for code, chars in data["distinctive"].items() for char in chars}
    return scripts, stopwords, distinctive


def detect_language(text: str, tokens: list[Token]) -> LanguageGuess:
    """The language of ``text``; English when nothing speaks against it (tag lists are English)."""
    scripts, stopwords, distinctive = _tables()
    counts: dict[str, int] = {}
    if not text.isascii():
        for code, pattern in scripts:
            found = len(pattern.findall(text))
            if found:
                counts[code] = found
    non_latin = sum(counts.values())
    letters = sum(1 for c in text if c.isalpha()) if counts else 1
    if non_latin and non_latin >= 0.3 * letters:
        if counts.get("ja"):  # kana decides Japanese even when most characters are kanji
            counts["ja"] += counts.pop("zh", 0)
        code = max(counts, key=lambda c: counts[c])
        return LanguageGuess(code, round(min(1.0, 0.5 + non_latin / letters / 2), 3))
    votes: dict[str, float] = {}
    for token in tokens:
        for code, words in stopwords.items():
            if token.raw in words:
                votes[code] = votes.get(code, 0.0) + 1.0
    for char in set(text.lower()):
        hinted = distinctive.get(char)
        if hinted is not None:
            votes[hinted] = votes.get(hinted, 0.0) + 1.5
    if not votes:
        return LanguageGuess("en", 0.5 if tokens else 0.3)
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    best, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    if best != "en" and votes.get("en", 0.0) >= top:
        best, top = "en", votes["en"]
    confidence = min(1.0, 0.4 + 0.6 * (top - second) / (top + 1.0))
    return LanguageGuess(best, round(confidence, 3))
