"""Aspect from a prompt: an explicit ratio or size, framing words, else what suits the content type."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .analysis import AspectHint
from .aspect_words import described_words
from .lexicon import PhraseIndex, Token, load_vocab

__all__ = ["FrameContext", "infer_aspect", "orientation_of", "wide_scene"]

_RATIO = re.compile(
    r"(?P<prefix>--ar\s+|aspect ratio\s*(?:of\s*)?|ratio\s+)?"
    r"(?<![\d.:])(?P<w>\d{1,2}(?:\.\d{1,2})?)\s*[:\u00d7]\s*(?P<h>\d{1,2}(?:\.\d{1,2})?)(?![\d:])",
    re.I,
)
_SIZE = re.compile(r"(?<!\d)([1-9]\d{2,3})\s*[x\u00d7]\s*([1-9]\d{2,3})(?!\d)")
#: A small square size (sprites and icons: "64x64", "16x16"): square whatever the words say.
_SPRITE = re.compile(r"(?<![\d.])([1-9]\d)\s*[x\u00d7]\s*\1(?![\d.])")
_KNOWN_RATIOS = frozenset(
    {(1, 1), (2, 3), (3, 2), (3, 4), (4, 3), (4, 5), (5, 4), (9, 16), (16, 9), (21, 9), (9, 21), (2, 1), (1, 2),
     (3, 1), (5, 7), (7, 5), (16, 10), (10, 16), (2.39, 1), (1.85, 1), (2.35, 1)}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FrameContext:
    """What the content analysis found that bears on the frame."""

    content_type: str
    subject_type: str | None
    confidence: float
    group: bool
    single_person: bool
    not_scene: frozenset[int] = frozenset()  # scene words naming a kind of creature or vehicle


def orientation_of(ratio: float) -> str:
    """Orientation name of a width/height ratio."""
    if ratio < 0.6:
        return "tall"
    if ratio < 0.9:
        return "portrait"
    if ratio <= 1.1:
        return "square"
    if ratio < 1.65:
        return "landscape"
    return "wide"


@functools.cache
def _index() -> PhraseIndex:
    cues = load_vocab("aspect")["cues"]
    return PhraseIndex((f"aspect:{term}", f"{orientation}|{ratio}", term, float(strength))
                       for term, orientation, ratio, strength in cues)  # fmt: skip


@functools.cache
def _scene_index() -> PhraseIndex:
    scene = load_vocab("aspect")["scene"]
    return PhraseIndex(
        (f"scene:{kind}:{term}", kind, term, float(strength))
        for kind, terms in scene.items()
        for term, strength in terms.items()
    )


@dataclass(frozen=True, slots=True)
class _Scene:
    """What the scene words say: votes for landscape (wide scenery) and portrait (a whole figure), whether
    it is a close-up, and the words behind each."""

    wide: float
    figure: float
    close: bool
    motion: float
    words: dict[str, list[str]]


def _scene(tokens: list[Token], text: str, skip: frozenset[int] = frozenset()) -> _Scene:
    table = load_vocab("aspect")
    cap = float(table["scene_cap"])
    totals = {"wide": 0.0, "figure": 0.0, "close": 0.0, "motion": 0.0}
    words: dict[str, list[str]] = {"wide": [], "figure": [], "close": [], "motion": []}
    for match in _scene_index().find(tokens, text):
        if match.start >= 0 and skip.intersection(range(match.start, match.end)):
            continue  # "highland cow", "sea turtle": the kind of animal, not the scene
        totals[match.label] += match.value * max(0.0, min(match.weight, 2.0))
        words[match.label].append(match.term)
    return _Scene(
        min(cap, totals["wide"]),
        min(cap, totals["figure"]),
        totals["close"] >= 1.0,
        min(cap, totals["motion"]),
        words,
    )


def wide_scene(tokens: list[Token], text: str, skip: frozenset[int] = frozenset()) -> float:
    """How strongly the words describe open scenery (0 to ``scene_cap``): a person in it is not a portrait.
    Words at ``skip`` do not count."""
    return _scene(tokens, text, skip).wide


def _explicit(text: str) -> AspectHint | None:
    for match in _RATIO.finditer(text):
        width, height = float(match.group("w")), float(match.group("h"))
        prefixed = match.group("prefix") is not None
        if width <= 0 or height <= 0 or not (prefixed or (width, height) in _KNOWN_RATIOS):
            continue
        ratio = width / height
        return AspectHint(orientation_of(ratio), round(ratio, 4), 0.95, "ratio", match.group(0).strip())
    sprite = _SPRITE.search(text)
    if sprite is not None:
        return AspectHint("square", 1.0, 0.9, "ratio", sprite.group(0))
    size = _SIZE.search(text)
    if size is not None:
        ratio = int(size.group(1)) / int(size.group(2))
        if 0.25 <= ratio <= 4:
            return AspectHint(orientation_of(ratio), round(ratio, 4), 0.9, "ratio", size.group(0))
    return None


def _whole_chunk(tokens: list[Token], start: int, end: int) -> bool:
    """Whether tokens ``start:end`` are a whole comma-separated part of the prompt."""
    if start < 0:
        return False
    before = start == 0 or tokens[start - 1].is_separator
    return before and (end >= len(tokens) or tokens[end].is_separator)


def infer_aspect(raw: str, text: str, tokens: list[Token], context: FrameContext) -> AspectHint:
    """The aspect the prompt asks for (``raw``: its text with syntax, ``text``: plain), or the one that
    suits its content."""
    explicit = _explicit(raw) or _explicit(text)
    if explicit is not None:
        return explicit
    votes: dict[str, float] = {}
    best_cue: dict[str, tuple[float, str, float]] = {}
    table = load_vocab("aspect")
    described = described_words(tokens)  # "vertical gardens", "running a shop": no frame words
    for match in _index().find(tokens, text):
        if match.start >= 0 and described.intersection(range(match.start, match.end)):
            continue
        orientation, cue_ratio = match.label.split("|")
        strength = match.value * max(0.0, min(match.weight, 2.0))
        if _whole_chunk(tokens, match.start, match.end):  # "…, square": a format instruction on its own
            strength *= table["alone_factor"]
        votes[orientation] = votes.get(orientation, 0.0) + strength
        if strength > best_cue.get(orientation, (0.0, "", 0.0))[0]:
            best_cue[orientation] = (strength, match.term, float(cue_ratio))
    defaults = table["content_defaults"]
    content_type = context.content_type
    if (
        content_type not in table["keep_own_default"]
        and context.subject_type is not None
        and context.subject_type in defaults
    ):
        content_type = context.subject_type
    default = defaults.get(content_type)
    if default is not None:
        votes[default[0]] = votes.get(default[0], 0.0) + 1.5 * context.confidence
    for applies, (orientation, strength) in (
        (context.group, table["group_vote"]),
        (context.single_person, table["single_person_vote"]),
    ):
        if applies:
            votes[orientation] = votes.get(orientation, 0.0) + strength
    scene = _scene(tokens, text, context.not_scene | described)
    if scene.wide:
        votes["landscape"] = votes.get("landscape", 0.0) + scene.wide
    if scene.figure:
        votes["portrait"] = votes.get("portrait", 0.0) + scene.figure
    moving = scene.motion if "animal" in (context.content_type, context.subject_type) else 0.0
    if moving:  # "a cheetah sprinting across dry grass": it needs room to move
        votes["landscape"] = votes.get("landscape", 0.0) + moving
    if scene.close:  # a close-up is never a wide picture, whatever its setting
        for orientation in ("landscape", "wide"):
            if orientation in votes:
                votes[orientation] *= table["close_factor"]
        tight = "portrait" if context.single_person else "square"
        votes[tight] = votes.get(tight, 0.0) + table["close_vote"]
    if not votes or max(votes.values()) <= 0:
        return AspectHint("square", 1.0, 0.3, "default")
    orientation = max(votes, key=lambda o: votes[o])
    total = sum(votes.values())
    confidence = round(min(0.95, 0.35 + 0.6 * votes[orientation] / (total + 1.0)), 3)
    from_scene = {"landscape": scene.wide + moving, "portrait": scene.figure}.get(orientation, 0.0)
    cue_strength = best_cue.get(orientation, (0.0, "", 0.0))[0]
    if from_scene > cue_strength and from_scene >= 1.0:
        kind = "figure" if orientation != "landscape" else "wide" if scene.wide >= moving else "motion"
        said = ", ".join(dict.fromkeys(scene.words[kind]))
        what = {"wide": "a wide scene", "figure": "a whole figure", "motion": "an animal in motion"}[kind]
        close = "; a close-up" if scene.close else ""
        return AspectHint(
            orientation, table["orientations"][orientation], confidence, "scene", f"{said} ({what}{close})"
        )
    if scene.close and orientation not in ("landscape", "wide") and orientation not in best_cue:
        ratio = float(default[1]) if default is not None and default[0] == orientation else None
        ratio = ratio or table["orientations"][orientation]
        said = ", ".join(dict.fromkeys(scene.words["close"]))
        return AspectHint(orientation, ratio, confidence, "scene", f"{said} (a close-up: not wide)")
    if orientation in best_cue:
        _, term, best_ratio = best_cue[orientation]
        return AspectHint(orientation, best_ratio, confidence, "cue", term)
    ratio = float(default[1]) if default is not None and default[0] == orientation else None
    ratio = ratio or table["orientations"][orientation]
    return AspectHint(orientation, ratio, confidence, "content", content_type)
