"""Vocabulary data (``vocab/*.json``) and the phrase matcher the analyzer runs over a prompt.

Files are read lazily with importlib.resources and cached per process; nothing is read at import.
Text is lower-cased, ``_`` reads as a space, and words are compared in a light singular form, so
``mountains`` matches ``mountain``. Phrases never match across commas. Terms in CJK scripts (no spaces
between words) are found by substring.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "PhraseIndex",
    "PhraseMatch",
    "Token",
    "content_index",
    "cue_index",
    "load_vocab",
    "stem",
    "tokenize",
]

_WORD = re.compile(r"\w+(?:['\u2019./+&-]\w+)*\+?|[,;.!?]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def load_vocab(name: str) -> Any:
    """The parsed JSON file ``vocab/<name>.json`` (cached per process)."""
    return _load(name)


@functools.cache
def _load(name: str) -> Any:
    text = resources.files(__package__).joinpath("vocab").joinpath(f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


_IRREGULAR = {
    "wolves": "wolf", "leaves": "leaf", "elves": "elf", "knives": "knife", "calves": "calf", "shelves": "shelf",
    "thieves": "thief", "women": "woman", "men": "man", "children": "child", "people": "person", "mice": "mouse",
    "geese": "goose", "feet": "foot", "teeth": "tooth", "fish": "fish", "sheep": "sheep", "deer": "deer",
}  # fmt: skip


def _fold(word: str) -> str:
    """Latin letters without their accents ("sofá" → "sofa", "über" → "uber"); other scripts untouched."""
    if word.isascii():
        return word
    out = []
    for ch in word:
        if "\u00c0" <= ch <= "\u024f":
            ch = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)) or ch
        out.append(ch)
    return "".join(out)


#: Words in "-men" that are no plural of "-man".
_NOT_MEN = frozenset(
    {"abdomen", "specimen", "regimen", "stamen", "acumen", "albumen", "bitumen", "cerumen", "cyclamen", "dolmen",
     "foramen", "gravamen"}
)  # fmt: skip


@functools.lru_cache(maxsize=8192)
def stem(word: str) -> str:
    """A light singular form in US spelling, Latin accents dropped: ``cities`` → ``city``, ``boxes`` → ``box``,
    ``cats`` → ``cat``, ``fishermen`` → ``fisherman``, ``watercolours`` → ``watercolor``, ``owl's`` → ``owl``,
    ``sofá`` → ``sofa``."""
    word = _fold(word)
    if len(word) > 3 and word.endswith(("'s", "\u2019s")):  # possessive: "an owl's face"
        word = word[:-2]
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) > 5 and word.endswith("men") and word not in _NOT_MEN:  # fishermen, firewomen
        return word[:-3] + "man"
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("our"):  # colour, armour, harbour (flour, tour, four stay)
        return word[:-3] + "or"
    return word


@dataclass(frozen=True, slots=True)
class Token:
    """A word (or a separator such as ``,``) with its singular form and attention weight."""

    raw: str
    stem: str
    weight: float = 1.0

    @property
    def is_separator(self) -> bool:
        return self.raw in ",;.!?"


def tokenize(text: str, weight: float = 1.0) -> list[Token]:
    """Tokens of ``text`` (lower-cased, ``_`` as space)."""
    lowered = text.lower().replace("_", " ")
    return [Token(w, stem(w), weight) for w in _WORD.findall(lowered)]


@dataclass(frozen=True, slots=True)
class PhraseMatch:
    """A vocabulary term found at ``start`` (token index; -1 for a CJK substring match)."""

    key: str
    label: str
    value: float
    term: str
    start: int
    end: int
    weight: float


class PhraseIndex:
    """Longest-match lookup of many vocabulary terms at once; terms sharing a key never overlap."""

    def __init__(self, entries: Iterable[tuple[str, str, str, float]]) -> None:
        """``entries``: (key, label, term, value)."""
        self._by_first: dict[str, list[tuple[tuple[str, ...], str, str, str, float]]] = {}
        self._cjk: list[tuple[str, str, str, float]] = []
        for key, label, term, value in entries:
            term = term.lower().replace("_", " ")
            if _CJK.search(term):
                self._cjk.append((key, label, term, value))
                continue
            stems = tuple(stem(w) for w in _WORD.findall(term))
            if stems:
                self._by_first.setdefault(stems[0], []).append((stems, key, label, term, value))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda c: -len(c[0]))

    def find(self, tokens: list[Token], text: str = "") -> Iterator[PhraseMatch]:
        """Matches in ``tokens`` (and CJK terms in ``text``), left to right."""
        stems = [t.stem for t in tokens]
        free: dict[str, int] = {}
        for i, first in enumerate(stems):
            for words, key, label, term, value in self._by_first.get(first, ()):
                end = i + len(words)
                if free.get(key, 0) > i or tuple(stems[i:end]) != words:
                    continue
                free[key] = end
                yield PhraseMatch(key, label, value, term, i, end, tokens[i].weight)
        if text and _CJK.search(text):
            for key, label, term, value in self._cjk:
                if term in text:
                    yield PhraseMatch(key, label, value, term, -1, -1, 1.0)


@functools.cache
def cue_index() -> PhraseIndex:
    """All cue categories of ``cues.json``, keyed ``category:label``."""
    data = load_vocab("cues")
    return PhraseIndex(
        (f"{category}:{label}", label, term, 1.0)
        for category, labels in data.items()
        if not category.startswith("_")
        for label, terms in labels.items()
        for term in terms
    )


@functools.cache
def content_index() -> PhraseIndex:
    """Content-type evidence of ``content_types.json``, keyed ``content:type``."""
    data = load_vocab("content_types")
    return PhraseIndex(
        (f"content:{label}", label, term, float(score))
        for label, terms in data["terms"].items()
        for term, score in terms.items()
    )
