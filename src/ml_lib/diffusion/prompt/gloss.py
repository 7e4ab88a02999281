"""English glosses of a non-English prompt's words, so its nouns reach the English vocabularies and lexicon.

``vocab/glosses.json`` holds a small hand-written table per language (the languages of the labelled
tuning prompts): "Eichhörnchen" → squirrel, "acantilados" → cliffs, "田んぼ" → rice paddy. Words are
compared after stripping inflection endings from both sides ("реки" and "река" meet at "рек"); a German or
Dutch compound is read by its head ("Hochhaus" → high-rise, else "…haus" → house); Chinese and Japanese
runs are cut into the longest known words; a Korean word may carry a particle after a known word
("시골길로"). Articles and prepositions are glossed too, so the glossed phrases read as English ones ("op
een akker" → "on a field"). Words the table does not know stay as they are (the curated vocabularies know some), and
are marked foreign so that the English lexicon does not read them ("die", "den" are English nouns too).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .lexicon import Token, load_vocab, stem

__all__ = ["Glossed", "gloss_tokens"]

_MAX_WORDS = 3  # the longest source phrase ("coucher de soleil")
_MIN_STEM = 3
_MIN_HEAD = 4


@dataclass(frozen=True, slots=True)
class Glossed:
    """The prompt's tokens with known words replaced by their English glosses; ``foreign`` are the indices of
    the words left as they were, ``pairs`` the (original, English) words for the decision's reason."""

    tokens: list[Token]
    foreign: frozenset[int]
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Table:
    words: dict[str, str]  # stemmed source word or phrase → English
    function: frozenset[str]  # the keys that are articles and prepositions (not named in the notes)
    endings: tuple[str, ...]
    longest: int  # the longest key, in characters (CJK segmentation)
    compounds: bool
    particles: int


def _strip(word: str, endings: tuple[str, ...]) -> str:
    for ending in endings:
        if word.endswith(ending) and len(word) - len(ending) >= _MIN_STEM:
            return word[: -len(ending)]
    return word


@functools.cache
def _table(language: str) -> _Table | None:
    data = load_vocab("glosses")
    words = data["words"].get(language)
    if not words:
        return None
    endings = tuple(sorted(data["endings"].get(language, ()), key=len, reverse=True))
    function = {_strip(w, endings): en for w, en in data["function_words"].get(language, {}).items()}
    keyed = {" ".join(_strip(w, endings) for w in src.split()): en for src, en in words.items()}
    return _Table(
        {**function, **keyed},
        frozenset(function) - frozenset(keyed),
        endings,
        max(len(k) for k in keyed),
        language in data["compound_heads"],
        int(data["particles"].get(language, 0)),
    )


def _cjk(word: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af" for ch in word)


def _ideograph(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


def _segments(word: str, table: _Table) -> list[tuple[str, str]]:
    """Known words of a Chinese or Japanese run, longest first at each place; the rest is skipped. A known
    single character right after an unknown ideograph is taken as the end of an unknown word ("谷" of the
    place name "渋谷" is no valley), not as a word."""
    out, i, unknown = [], 0, False
    while i < len(word):
        for size in range(min(table.longest, len(word) - i), 0, -1):
            piece = word[i : i + size]
            if piece in table.words and not (size == 1 and unknown):
                out.append((piece, table.words[piece]))
                i += size
                unknown = False
                break
        else:
            unknown = _ideograph(word[i])
            i += 1
    return out


def _word(raw: str, table: _Table) -> str | None:
    """The English of one spaced word: as it is, without its ending, by its compound head, or (Korean) by
    a known word with a particle after it."""
    key = _strip(raw, table.endings)
    if key in table.words:
        return table.words[key]
    if table.particles:
        for cut in range(1, table.particles + 1):
            if len(raw) > cut and raw[:-cut] in table.words:
                return table.words[raw[:-cut]]
    if table.compounds:
        for start in range(_MIN_STEM, len(raw) - _MIN_HEAD + 1):
            head = _strip(raw[start:], table.endings)
            if head in table.words:
                return table.words[head]
    return None


def gloss_tokens(tokens: list[Token], language: str) -> Glossed | None:
    """``tokens`` with the words of ``language`` the table knows in English; None when it knows none (or
    the language has no table, English included)."""
    table = _table(language) if language != "en" else None
    if table is None:
        return None
    out: list[Token] = []
    foreign: set[int] = set()
    pairs: list[tuple[str, str]] = []

    def emit(source: str, english: str, weight: float) -> None:
        out.extend(Token(w, stem(w), weight) for w in english.split())
        if _strip(source, table.endings) not in table.function:
            pairs.append((source, english))

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.is_separator:
            out.append(token)
            i += 1
            continue
        for size in range(_MAX_WORDS, 1, -1):  # a phrase: "puesta de sol"
            words = tokens[i : i + size]
            key = " ".join(_strip(t.raw, table.endings) for t in words)
            if len(words) == size and key in table.words:
                emit(" ".join(t.raw for t in words), table.words[key], token.weight)
                i += size
                break
        else:
            found = _segments(token.raw, table) if _cjk(token.raw) and not table.particles else []
            english = None if found else _word(token.raw, table)
            for source, gloss in found:
                emit(source, gloss, token.weight)
            if english is not None:
                emit(token.raw, english, token.weight)
            elif not found:
                foreign.add(len(out))
                out.append(token)
            i += 1
    if not pairs:
        return None
    return Glossed(out, frozenset(foreign), tuple(pairs))
