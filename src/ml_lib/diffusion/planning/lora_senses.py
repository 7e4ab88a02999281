"""A LoRA's one word used in another sense (pure). Three kinds, each with the words that make the other sense;
:func:`other_sense` refuses the word unless the LoRA itself knows those words ("dragon girl" for a
dragon-girl LoRA):

- a concept's or character's word modifies a noun naming another kind of thing, one the noun lexicon knows
  ("dragon boat", "mustang horse"), or the thing shown in a product scene ("underwater camera housing");
- a one-word name modifies a place or thing ("asuka village"): the place is named after it;
- in a photo, a style word names a thing acted on or displayed ("blasting graffiti off a wall", "covered in
  stickers", "playing with modelling clay").

And :func:`photo_mention`: a photo cannot look drawn, so in a photo a drawn medium's words are things shown
("dead pixels on a laptop screen, macro photo") unless the look is asked for ("graffiti style", "but as a
watercolor painting"); an aesthetic's tags alone are too ("the brass gears of a tower clock, photo"), its name
or trigger is not ("a steampunk airship, photo").

Not a rule: a style word after one modifier no vocabulary knows ("the military tattoo", "a stand-up comic")
was tried and dropped, because the same shape is how people ask for the style ("a skull tattoo", "a rose
tattoo": the lexicon lacks most such nouns).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..prompt.lexicon import Token, load_vocab
from ..prompt.noun_kinds import noun_lexicon
from .lora_index import Evidence, lora_terms

if TYPE_CHECKING:
    from .lora_judge import PromptWords

__all__ = ["other_sense", "photo_mention"]

#: Words that end a noun compound: articles, prepositions and clause words ("court after rain").
_STOPS = frozenset(
    {
        "of", "and", "with", "in", "on", "at", "or", "for", "from", "by", "to", "a", "an", "the", "its", "his",
        "her", "their", "this", "that", "after", "through", "outside", "across", "off", "under", "near",
        "against", "above", "below", "into", "over", "beside", "behind", "while", "as", "like", "during",
        "inside", "around", "between", "beneath", "along", "up", "down", "is", "are", "was", "were", "who",
        "which", "where", "when",
    }
)  # fmt: skip
#: Words that say the picture is a photograph of the scene, whatever things it shows.
_PHOTO = frozenset({"photo", "photograph", "photography", "snapshot"})
_ARTICLES = frozenset({"a", "an", "the"})
_UNSEEN = object()
_KEYS = {kind: f"sense {kind}" for kind in ("style", "concept", "identity")}  # memo keys, built once
Senses = tuple[tuple[str, tuple[str, ...]], ...]


@functools.cache
def _style_heads() -> frozenset[str]:
    return frozenset(lora_terms()["style_heads"])


def _verbal(raw: str) -> bool:
    """A participle or gerund ("galloping", "parked"), or an adverb ("freshly"): not a noun of a compound."""
    return (
        (raw.endswith("ing") and len(raw) > 4) or (raw.endswith("ed") and len(raw) > 3) or raw.endswith("ly")
    )


def _noun(token: Token | None) -> bool:
    """Could be a noun of a compound: a word, no stop word, participle or adverb."""
    return token is not None and not token.is_separator and token.raw not in _STOPS and not _verbal(token.raw)


def _at(p: PromptWords, k: int) -> Token | None:
    return p.tokens[k] if 0 <= k < len(p.tokens) else None


def _made_head(ev: Evidence, p: PromptWords) -> tuple[str, ...]:
    """The next noun when the noun lexicon says it is a made thing, a vehicle or a building ("boat" of "dragon
    boat"): the word says which kind of that thing it is ("a mecha spider", "an underwater cave" stay)."""
    after = _at(p, ev.end)
    if not _noun(after) or after is None or p.tokens[ev.start].raw.endswith("'s"):
        return ()  # "a mecha's cockpit": the possessor is there
    kind = noun_lexicon().word_kind(after)
    return (after.stem,) if kind is not None and _families().get(kind, kind) in _MADE else ()


_MADE = frozenset({"vehicle", "architecture", "interior"})


@functools.cache
def _families() -> dict[str, str]:
    return dict(load_vocab("content_types")["lexicon"]["families"])


def _next_noun(ev: Evidence, p: PromptWords) -> tuple[str, ...]:
    """The next noun, whatever it is ("village" of "asuka village"), unless it is a style head or names the
    picture itself ("film grain snapshot", "a ukiyo-e portrait": the look of the picture)."""
    after = _at(p, ev.end)
    if not _noun(after) or after is None or not after.raw.isalpha():
        return ()
    picture = _style_heads() | _picture_nouns() | _PHOTO
    return () if after.raw in picture or after.stem in picture else (after.stem,)


def _acted_on(ev: Evidence, p: PromptWords) -> tuple[str, ...]:
    """In a photo, the verb acting on the thing the style word names ("blasting" of "blasting graffiti off",
    "covered" of "covered in stickers", "playing" of "playing with modelling clay")."""
    if not _PHOTO & p.stems:
        return ()
    after = _at(p, ev.end)
    if after is not None and (after.raw in _style_heads() or after.stem in _style_heads()):
        return ()  # "graffiti art …, photo": the look is asked for
    for k in range(ev.start - 1, max(-1, ev.start - 4), -1):
        token = p.tokens[k]
        if token.is_separator:
            return ()
        # a gerund right before the word is its modifier ("with modelling clay") unless a noun acts
        ing = token.raw.endswith("ing") and len(token.raw) > 5 and (k < ev.start - 1 or _noun(_at(p, k - 1)))
        if ing or (token.raw.endswith("ed") and len(token.raw) > 4):
            return (token.stem,)
    return ()


def _collection(ev: Evidence, p: PromptWords) -> bool:
    """The word's phrase is what a collection holds ("skeins of embroidery floss", "jars of …"): a plural
    noun, no picture word, then "of" right before it."""
    of, holder = _at(p, ev.start - 1), _at(p, ev.start - 2)
    if of is None or of.raw != "of" or not _noun(holder) or holder is None or holder.raw == holder.stem:
        return False
    pictures = _style_heads() | _picture_nouns()
    return holder.raw not in pictures and holder.stem not in pictures


@functools.cache
def _picture_nouns() -> frozenset[str]:
    return frozenset(load_vocab("content_types")["picture_nouns"])


def _possessed(ev: Evidence, p: PromptWords) -> str:
    """A phrase spelled with a possessive ("a cat's ears" for "cat ears"): a part of the possessor, which is
    shown there, not the thing the phrase names (the accessory)."""
    words = p.tokens[ev.start : ev.end]
    if not any(t.raw.endswith("'s") for t in words[:-1]):
        return ""
    return (
        f"'{' '.join(t.raw for t in words)}': a part of a {words[0].stem} shown there, not the LoRA's thing"
    )


def other_sense(ev: Evidence, p: PromptWords, known: frozenset[str], kind: str) -> str:
    """Why the one-word evidence ``ev`` of a LoRA of ``kind`` (style, concept, identity) that knows the words
    ``known`` means another thing here ("" when it does not)."""
    key = (_KEYS.get(kind, kind), ev.start, ev.end)
    verdict = p.memo.get(key, _UNSEEN)
    if verdict is _UNSEEN:  # the same words are judged for many LoRAs of a large catalog
        verdict = p.memo[key] = _senses(ev, p, kind) if ev.end - ev.start == 1 else _possessed(ev, p)
    if isinstance(verdict, str):
        return verdict
    if not verdict:
        return ""
    for label, words in verdict:  # type: ignore[attr-defined]
        if words[0] == "#photo" and _PHOTO & known:
            continue  # a photographic style ("polaroid", "bokeh"): a photo is its medium
        if not all(word in known for word in words if word != "#photo"):
            return label.format(
                word=p.tokens[ev.start].raw, words=" ".join(w for w in words if w != "#photo")
            )
    return ""


def _senses(ev: Evidence, p: PromptWords, kind: str) -> Senses:
    out: list[tuple[str, tuple[str, ...]]] = []
    if kind != "style" and (head := _made_head(ev, p)):
        out.append(("'{word} {words}': the word says which kind of another thing it is", head))
    if kind == "concept" and p.thing_scene and (head := _next_noun(ev, p)):
        out.append(("'{word} {words}': the word describes the thing shown, not the LoRA's concept", head))
    if kind == "identity" and (head := _next_noun(ev, p)):
        out.append(("'{word} {words}': a place or thing named after it, not the character or model", head))
    if kind == "style" and (verb := _acted_on(ev, p)):
        out.append(("'{words} … {word}': a thing acted on in a photo, not a style", verb))
    if kind == "style" and _collection(ev, p) and (head := _next_noun(ev, p)):
        out.append(("'… of {word} {words}': things a collection holds, not a style", head))
    if kind == "style" and _PHOTO & p.stems and (head := _next_noun(ev, p)):
        out.append(
            ("'{word} {words}' in a photo: it describes that thing, not a drawn style", ("#photo", *head))
        )
    return tuple(out)


@functools.cache
def _drawn_media() -> frozenset[str]:
    return frozenset(lora_terms()["drawn_media"])


def _asks_for_look(ev: Evidence, p: PromptWords) -> bool:
    """The words ask for the look itself: a look word in them or in the two words after ("graffiti style",
    "pixel art style"), or a rendering word just before them ("as a soft watercolor painting", "into pixel
    art", "in the style of ukiyo-e"), no comma between."""
    terms = lora_terms()
    looks = terms["look_words"]
    for k in range(ev.start, ev.end + 2):
        token = _at(p, k)
        if token is None or token.is_separator:
            break
        if token.raw in looks or token.stem in looks:
            return True
    for k in range(ev.start - 1, max(-1, ev.start - 4), -1):
        token = p.tokens[k]
        if token.is_separator:
            return False
        if token.raw in terms["as_words"]:
            return True
    return False


def photo_mention(ev: Evidence, p: PromptWords, known: frozenset[str], categories: Iterable[str] = ()) -> str:
    """Why a style LoRA's evidence ``ev`` names something shown in a photo rather than the picture's look ("" when
    it does not): the prompt says photo, the LoRA (its words ``known``, its Civitai ``categories``) is no
    photographic style, the look is not asked for, and either the LoRA is a drawn medium or the words are only
    its tags."""
    if not _PHOTO & p.stems:
        return ""  # most prompts: nothing more to read
    known = known | {c.lower() for c in categories}
    if _PHOTO & known or _asks_for_look(ev, p):
        return ""
    if not known & _drawn_media() and ev.field in ("trigger", "name"):
        return ""  # an aesthetic a photo can have, named: "a steampunk airship, photo"
    return f"'{ev.phrase}' in a photo: a thing shown there, not a style asked for ('{ev.phrase} style' would ask)"
