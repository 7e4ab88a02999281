"""Words that name something the picture is not *of*: a noun used as a modifier ("zebra crossing", "train
station"), things far off in a scene ("a herd of elephants in the distance"), and booru tags that a photo
prompt borrows ("1girl, … raw photo"). Word lists live in ``vocab/content_types.json``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .lexicon import Token, load_vocab

__all__ = [
    "attribute_words",
    "borrowed_tag_points",
    "distant_words",
    "modifier_words",
    "object_participle",
    "purpose_words",
    "viewpoint_words",
]

_CLAUSE_BREAKS = frozenset({"with", "and", "while", "where"})
_DETERMINERS = frozenset(
    {"a", "an", "the", "this", "that", "his", "her", "their", "its", "my", "our", "some"}
)


def modifier_words(tokens: list[Token]) -> set[int]:
    """Indices of nouns that modify the next noun ("zebra" of "zebra crossing", "bus" of "bus stop",
    "cat" of "cat ears"): they say what kind of thing the next noun is, not that the picture shows one."""
    heads = set(load_vocab("content_types")["modifier_heads"])
    out = set()
    for i, token in enumerate(tokens[:-1]):
        head = tokens[i + 1]
        after = tokens[i + 2].raw if i + 2 < len(tokens) else ""
        # a noun adjunct is singular ("zebra crossing"); "elephants crossing a river", "a dog crossing the
        # road" use the word as a verb
        if token.is_separator or token.raw != token.stem or after in _DETERMINERS:
            continue
        if head.raw in heads or head.stem in heads:
            out.add(i)
    return out


#: Words after a participle that keep it about the picture ("painted in oils", "painted with a palette knife").
_PARTICIPLE_LINKS = frozenset({"in", "with", "by", "on", "using", "as", "and", "of", "from", "onto", "over"})


def object_participle(tokens: list[Token], end: int, types: Mapping[str, Any]) -> bool:
    """Whether the participle ending at ``end`` ("painted") describes the next word's thing ("a clown's painted
    face", "a hand-painted sign") rather than the picture's medium ("a painted portrait", "painted in oils")."""
    if end >= len(tokens):
        return False
    following = tokens[end]
    if following.is_separator or following.raw in _PARTICIPLE_LINKS or following.raw.endswith("ly"):
        return False
    pictures = types["picture_nouns"]
    return following.raw not in pictures and following.stem not in pictures


def attribute_words(tokens: list[Token]) -> set[int]:
    """Indices of the words after "with" up to the clause's end, when words come before it in the clause:
    "a café with wicker chairs" is a café; the chairs say what it is like."""
    out: set[int] = set()
    start = 0
    for i, token in enumerate(tokens):
        if token.is_separator:
            start = i + 1
        elif token.raw == "with" and i - start >= 1:
            k = i + 1
            while k < len(tokens) and not tokens[k].is_separator:
                out.add(k)
                k += 1
    return out


def distant_words(tokens: list[Token]) -> set[int]:
    """Indices of the words naming things far off in the scene: the phrase before "in the distance" (back to
    the clause's start, "with" or "and") and the noun after "distant": small in the frame, not its subject."""
    out: set[int] = set()
    raws = [t.raw for t in tokens]
    for i in range(len(tokens) - 2):
        if raws[i : i + 3] == ["in", "the", "distance"]:
            k = i - 1
            while k >= 0 and not tokens[k].is_separator and raws[k] not in _CLAUSE_BREAKS:
                out.add(k)
                k -= 1
    for i, raw in enumerate(raws[:-1]):
        if raw == "distant":
            for k in range(i + 1, min(i + 3, len(tokens))):
                if tokens[k].is_separator:
                    break
                out.add(k)
    return out


def borrowed_tag_points(matched: Mapping[str, float], evidence: Mapping[str, float], types: Any) -> float:
    """The anime points that came only from booru tags (``matched``: term → points) when the prompt asks for
    a photo (photo evidence at least ``realism_points``): "1girl, upper body, raw photo" is a photo of a
    woman, not an anime picture. 0 when the photo evidence is weaker or a real anime term is present."""
    if evidence.get("photo", 0.0) < types["realism_points"]:
        return 0.0
    booru = set(types["booru_tags"])
    if any(term not in booru for term in matched):
        return 0.0
    return sum(matched.values())


#: Words before "from" that make what follows the camera's place ("seen from a seaplane").
_VIEWPOINTS = frozenset({"seen", "viewed", "shot", "photographed", "filmed", "taken", "view", "views"})
#: Words that end the viewpoint's phrase: what comes next is in the picture again ("from a hill over the bay").
_VIEW_ENDS = frozenset(
    {
        "over",
        "across",
        "into",
        "onto",
        "toward",
        "towards",
        "to",
        "with",
        "and",
        "while",
        "where",
        "at",
        "above",
    }
)


def viewpoint_words(tokens: list[Token]) -> set[int]:
    """Indices of the words naming where the picture is taken from ("an archipelago seen from a seaplane",
    "the view from a train window"): the camera's place, not something the picture shows."""
    starts = (
        i + 2 for i in range(len(tokens) - 1) if tokens[i].raw in _VIEWPOINTS and tokens[i + 1].raw == "from"
    )
    return _phrases_from(tokens, starts, _VIEW_ENDS)


def purpose_words(tokens: list[Token]) -> set[int]:
    """Indices of the words naming what the picture is for ("a headshot for a speaker badge", "a photo for a
    magazine cover"): the use, not the medium. From "for a/an/the" to the end of the phrase."""
    starts = (
        i + 2 for i in range(len(tokens) - 1) if tokens[i].raw == "for" and tokens[i + 1].raw in _ARTICLES
    )
    return _phrases_from(tokens, starts, _CLAUSE_BREAKS)


_ARTICLES = frozenset({"a", "an", "the"})


def _phrases_from(tokens: list[Token], starts: Iterable[int], ends: frozenset[str]) -> set[int]:
    """Indices of the words from each of ``starts`` up to the next separator or word of ``ends``."""
    out: set[int] = set()
    for k in starts:
        while k < len(tokens) and not tokens[k].is_separator and tokens[k].raw not in ends:
            out.add(k)
            k += 1
    return out
