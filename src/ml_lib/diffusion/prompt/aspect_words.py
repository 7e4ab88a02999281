"""Words of aspect cues that describe things in the picture, not its frame (pure): a direction word on a
plural noun ("vertical gardens", "short vertical dashes": the things are vertical, the picture need not be;
"vertical shot", "…, vertical" stay format requests) and a motion verb with an object ("a badger running a
tea shop" runs a business, it is not in motion; "a fox running across a field" is)."""

from __future__ import annotations

from collections.abc import Sequence

from .lexicon import Token

__all__ = ["described_words"]

_DIRECTIONS = frozenset({"vertical", "horizontal"})
_MOTION = frozenset({"running", "runs", "run"})
_OBJECT_ARTICLES = frozenset({"a", "an"})


def described_words(tokens: Sequence[Token]) -> frozenset[int]:
    """Indices of cue words that here describe a thing or an action of the picture rather than its frame."""
    out: set[int] = set()
    for i, token in enumerate(tokens[:-1]):
        after = tokens[i + 1]
        if after.is_separator or not after.raw.isalpha():
            continue
        if token.raw in _DIRECTIONS and after.raw != after.stem:
            out.add(i)  # "vertical gardens": plural things, each vertical
        elif token.raw in _MOTION and after.raw in _OBJECT_ARTICLES:
            out.add(i)  # "running a tea shop": the verb takes an object, there is no motion
    return frozenset(out)
