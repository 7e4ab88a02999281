"""The analyzer's cue readings (pure): style, lighting, camera … cues of ``vocab/cues.json``, artists named
with "by" or "in the style of", negated words as negative cues, and the NSFW score."""

from __future__ import annotations

import functools
import re

from .analysis import Cue
from .lexicon import PhraseIndex, Token, cue_index, load_vocab

__all__ = ["negation_cues", "read_cues", "read_nsfw"]

_ARTIST = re.compile(
    r"\b(?:art by|artwork by|painted by|drawn by|illustrated by|photographed by|by|in the style of|style of|"
    r"inspired by)\s+([a-z][\w.'\- ]{2,40}?)\s*(?=,|;|\.\s|\band\b|$)"
)
_NOT_ARTIST_START = (
    "the ",
    "a ",
    "an ",
    "his ",
    "her ",
    "their ",
    "its ",
    "night",
    "day",
    "moonlight",
    "candle",
)
_CUE_FIELDS = {
    "style": "styles",
    "medium": "mediums",
    "artist": "artists",
    "mood": "moods",
    "lighting": "lighting",
    "camera": "camera",
    "time_of_day": "time_of_day",
    "weather": "weather",
    "season": "seasons",
    "quality": "quality",
    "negative": "negative",
}


def negation_cues(tokens: list[Token], negated: set[int]) -> list[Cue]:
    """Negated runs of words ("no people") as negative cues."""
    cues, run = [], []
    for i, token in enumerate(tokens):
        if i in negated:
            run.append(token.raw)
        elif run:
            cues.append(Cue(" ".join(run), "no " + " ".join(run), 0.8))
            run = []
    if run:
        cues.append(Cue(" ".join(run), "no " + " ".join(run), 0.8))
    return cues


@functools.cache
def _nsfw_index() -> PhraseIndex:
    data = load_vocab("nsfw")
    return PhraseIndex(
        ("nsfw", kind, term, 1.0) for kind in ("explicit", "suggestive", "not_nsfw") for term in data[kind]
    )


def read_cues(tokens: list[Token], text: str, negated: set[int]) -> dict[str, list[Cue]]:
    """Every cue of ``tokens`` by field (negated words count only as negative cues) and the artists named."""
    out: dict[str, list[Cue]] = {field: [] for field in _CUE_FIELDS.values()}
    seen: set[str] = set()
    for match in cue_index().find(tokens, text):
        category = match.key.split(":", 1)[0]
        if (match.start in negated and category != "negative") or match.key in seen:
            continue
        seen.add(match.key)
        exact = " " in match.term or match.term == match.label
        confidence = (0.9 if exact else 0.75) * min(1.0, max(0.3, match.weight))
        out[_CUE_FIELDS[category]].append(Cue(match.label, match.term, round(confidence, 3)))
    known_styles = {cue.label for cue in out["styles"]}
    known_artists = {cue.label for cue in out["artists"]} | {cue.text for cue in out["artists"]}
    for artist_match in _ARTIST.finditer(text.lower()):
        name = artist_match.group(1).strip(" .-'")
        if (
            name.startswith(_NOT_ARTIST_START)
            or name in known_styles
            or name in known_artists
            or len(name) < 3
        ):
            continue
        if any(name in artist or artist in name for artist in known_artists):
            continue
        out["artists"].append(Cue(name, artist_match.group(0).strip(), 0.6))
        known_artists.add(name)
    return out


def read_nsfw(tokens: list[Token], text: str) -> tuple[bool, float]:
    """Whether explicit words are present, and a 0 to 1 NSFW score."""
    explicit = suggestive = 0
    for match in _nsfw_index().find(tokens, text):
        if match.label == "explicit":
            explicit += 1
        elif match.label == "suggestive":
            suggestive += 1
    score = min(1.0, 0.7 * explicit + 0.25 * suggestive)
    return explicit > 0, round(score, 3)
