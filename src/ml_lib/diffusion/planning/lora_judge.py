"""Judging one LoRA against a prompt (pure): the prompt's words, which evidence is a mere mention or
secondary, and the score of what is left (``loras.choose_loras`` decides from the judgements)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..catalog.families import Family
from ..catalog.records import ModelRecord
from ..prompt.analysis import PromptAnalysis
from ..prompt.analyzer import prompt_tokens
from ..prompt.lexicon import Token, load_vocab
from ..prompt.noun_kinds import lexicon_phrases, noun_lexicon
from ..prompt.syntax import parse_prompt
from ..prompt.word_roles import modifier_words
from .lora_index import FIELD_WEIGHTS, STRONG, Evidence, LoraIndex, LoraProfile, lora_terms
from .lora_senses import other_sense, photo_mention

__all__ = ["Judged", "PromptWords", "defining_terms", "family_name", "judge", "read_prompt", "support"]

_NEGATIONS = frozenset({"no", "without", "not", "never", "sin", "ohne", "sans", "senza", "kein", "keine"})


# -- reading the prompt ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PromptWords:
    """The prompt's words, the ones a negation covers, and whether it shows objects (product, food …)."""

    tokens: tuple[Token, ...]
    negated: frozenset[int]
    object_scene: bool  # a product / still-life / food / interior prompt: materials describe objects
    thing_scene: bool = False  # a product, food or things on a surface (no room): any style word can
    stems: frozenset[str] = frozenset()
    compounds: tuple[
        tuple[int, str], ...
    ] = ()  # (word, its compound's head stem): "dragon" of "dragon fruit"
    memo: dict[tuple[str, int, int], object] = field(default_factory=dict, compare=False, repr=False)


def read_prompt(prompt: str, analysis: PromptAnalysis | None) -> PromptWords:
    """The words of ``prompt`` as the judge reads them (``analysis`` says whether it is an object scene)."""
    document = parse_prompt(prompt)
    toks = tuple(prompt_tokens(part.plain_chunks for part in document.subprompts))
    negated: set[int] = set()
    for i, token in enumerate(toks):
        if token.raw in _NEGATIONS:
            for j in range(i + 1, min(i + 5, len(toks))):
                if toks[j].is_separator:
                    break
                negated.add(j)
    terms = lora_terms()
    text = " " + " ".join(t.raw for t in toks) + " "
    things = any(f" {phrase} " in text for phrase in terms["object_phrases"]) or _on_a_surface(
        toks, terms["surfaces"]
    )
    thing_scene = things or (analysis is not None and analysis.content_type in terms["thing_types"])
    object_scene = thing_scene or (analysis is not None and analysis.content_type in terms["object_types"])
    stems = frozenset(t.stem for t in toks)
    return PromptWords(toks, frozenset(negated), object_scene, thing_scene, stems, _compounds(list(toks)))


def _on_a_surface(tokens: Sequence[Token], surfaces: frozenset[str]) -> bool:
    """Whether things are set "on a/the …" surface ("on a bookstore shelf", "on a potter's workbench")."""
    for i, token in enumerate(tokens):
        if token.raw != "on":
            continue
        for k in range(i + 1, min(i + 5, len(tokens))):
            if tokens[k].is_separator or tokens[k].raw in _LINKS:
                break
            if tokens[k].raw in surfaces or tokens[k].stem in surfaces:
                return True
    return False


def _compounds(tokens: list[Token]) -> tuple[tuple[int, str], ...]:
    """Words that are part of a compound naming something else, with the compound's head: a noun modifying
    the next ("dragon" of "dragon fruit", "fox" of "fox mask") and a word inside a multiword WordNet noun of
    another kind than its own ("dog" of "hot dog", "bear" of "teddy bear"; not "leopard" of "snow leopard")."""
    out = {i: f"{tokens[i].stem} {tokens[i + 1].stem}" for i in modifier_words(tokens)}
    lexicon, families = noun_lexicon(), load_vocab("content_types")["lexicon"]["families"]
    for i in range(len(tokens) - 1):  # "a dragon roll sushi platter": the dish, not a dragon
        if tokens[i].is_separator or tokens[i].raw != tokens[i].stem:
            continue
        for k in range(i + 1, min(i + 4, len(tokens))):
            word = tokens[k]
            if word.is_separator or word.raw in _LINKS or word.raw.endswith(("ing", "ed")):
                break
            kind = lexicon.word_kind(word)
            if kind is not None and families.get(kind, kind) == "food":
                out[i] = " ".join(t.stem for t in tokens[i : k + 1])
                break
    for phrase in lexicon_phrases(tokens):
        whole = families.get(phrase.kind, phrase.kind) if phrase.kind else None
        for k in range(phrase.start, phrase.end):
            own = lexicon.word_kind(tokens[k])
            if whole is None or own is None or families.get(own, own) != whole:
                out.setdefault(k, " ".join(t.stem for t in tokens[phrase.start : phrase.end]))
    return tuple(sorted(out.items()))


def _is_mention(ev: Evidence, p: PromptWords, known: frozenset[str]) -> bool:
    """Whether a material or art-form word names a thing's material or a tool rather than the look
    (``known``: the words the LoRA itself was trained on; "origami crane" is origami's own subject)."""
    key = (ev.phrase, ev.start, ev.end)
    verdict = p.memo.get(key, _UNSEEN)
    if verdict is _UNSEEN:  # the same words are judged for many LoRAs of a large catalog
        verdict = p.memo[key] = _mention(ev, p)
    if isinstance(verdict, str):
        return verdict not in known
    return bool(verdict)


_UNSEEN = object()


def _mention(ev: Evidence, p: PromptWords) -> bool | str:
    """:func:`_is_mention` without the LoRA: True or False, or the following word's stem when the answer is
    "a mention unless the LoRA knows that word" (an object scene)."""
    terms = lora_terms()
    after = p.tokens[ev.end] if ev.end < len(p.tokens) else None
    if p.object_scene and after is not None and after.raw in terms["display_heads"]:
        return True  # "a framed pixel art print above a sofa, interior photo": a picture in the room
    if ev.phrase not in terms["materials"] and not any(
        t.raw in terms["materials"] for t in p.tokens[ev.start : ev.end]
    ):
        return False
    before = " ".join(t.raw for t in p.tokens[max(0, ev.start - 3) : ev.start])
    if any(before.endswith(phrase) for phrase in terms["made_of"]):
        return False
    following = p.tokens[ev.end] if ev.end < len(p.tokens) else None
    if following is None or following.is_separator or following.raw in ("of", "and", "with", "in", "on"):
        return False
    if following.raw in terms["style_heads"] or following.stem in terms["style_heads"]:
        return False
    for k in range(ev.end, min(ev.end + 2, len(p.tokens))):  # "watercolor brushes", "origami paper packs"
        token = p.tokens[k]
        if token.is_separator:
            break
        if token.raw in terms["tool_nouns"] or token.stem in terms["tool_nouns"]:
            after = p.tokens[k + 1] if k + 1 < len(p.tokens) else None  # "comic book cover": a style
            return after is None or not (
                after.raw in terms["style_heads"] or after.stem in terms["style_heads"]
            )
    return following.stem if p.object_scene else False


def _looks_of_thing(ev: Evidence, p: PromptWords, known: frozenset[str]) -> bool:
    """:func:`_object_look` for a style LoRA that knows the words ``known``."""
    if not p.thing_scene:
        return False
    key = ("look", ev.start, ev.end)
    verdict = p.memo.get(key, _UNSEEN)
    if verdict is _UNSEEN:
        verdict = p.memo[key] = _object_look(ev, p)
    return verdict not in known if isinstance(verdict, str) else bool(verdict)


def _object_look(ev: Evidence, p: PromptWords) -> bool | str:
    """In a scene of things, a style word that is no material: "pixel art on the box" is printed on a thing
    and "gothic lettering" on a book describes it (a mention unless the LoRA knows that thing); "gothic
    style", "pixel art, product photo" stay requests."""
    terms = lora_terms()
    k = ev.end
    if k < len(p.tokens) and p.tokens[k].raw == "on":  # "pixel art on the box": printed on a thing
        k += 1
        while k < len(p.tokens) and p.tokens[k].raw in _ARTICLES:
            k += 1
    if k >= len(p.tokens) or (k == ev.end and p.tokens[k].raw in _LINKS):
        return False
    noun = p.tokens[k]
    if noun.is_separator or noun.raw in _LINKS or noun.raw in terms["style_heads"]:
        return False
    return False if noun.stem in terms["style_heads"] else noun.stem


_ARTICLES = frozenset({"a", "an", "the", "its", "his", "her", "their"})


def _figure(ev: Evidence, p: PromptWords) -> str:
    """The material when a concept word names a figure made of it ("a porcelain dragon", "a dragon made of
    cracked glaze porcelain"): a figure, not the creature or thing a concept LoRA draws; else ""."""
    key = ("figure", ev.start, ev.end)
    verdict = p.memo.get(key)
    if verdict is None:  # the same words are judged for many LoRAs of a large catalog
        verdict = p.memo[key] = _figure_material(ev, p)
    return str(verdict)


def _figure_material(ev: Evidence, p: PromptWords) -> str:
    terms = lora_terms()
    materials = terms["figure_materials"]
    if ev.start > 0 and p.tokens[ev.start - 1].raw in materials:
        return p.tokens[ev.start - 1].raw
    after = [t.raw for t in p.tokens[ev.end : ev.end + 7]]
    for phrase in terms["made_of_explicit"]:
        words = phrase.split()
        if after[: len(words)] == words:
            for word in after[len(words) : len(words) + 4]:
                if word in ",;.!?" or word in _LINKS:
                    break
                if word in materials:
                    return word
    return ""


_LINKS = frozenset({"of", "and", "with", "in", "on", "at", "or", "for", "from", "by", "to"})


def _modifier(ev: Evidence, p: PromptWords, parts: frozenset[str], known: frozenset[str]) -> bool:
    """A name word that is only part of the LoRA's own trigger ("food" of "food photo"), used on a noun the
    LoRA knows nothing of ("street food stall"): it says what the thing is, not the LoRA's concept."""
    if ev.field != "name" or ev.end - ev.start != 1 or ev.phrase not in parts:
        return False
    following = p.tokens[ev.end] if ev.end < len(p.tokens) else None
    if following is None or following.is_separator or following.raw in _LINKS:
        return False
    if following.raw.endswith("ing") or following.raw.endswith("ed"):
        return False  # "armor holding …", "armor lit …": the word is the head noun here
    return following.stem not in known


def _compound_head(ev: Evidence, p: PromptWords, known: frozenset[str]) -> str:
    """The compound a one-word concept is part of ("dragon fruit" for "dragon"), unless the LoRA knows its
    other words ("dragon girl" for a dragon-girl LoRA); else ""."""
    if ev.end - ev.start != 1:
        return ""
    compound = dict(p.compounds).get(ev.start, "")
    others = [word for word in compound.split() if word != ev.phrase]
    return compound if others and not all(word in known for word in others) else ""


def _secondary(ev: Evidence, p: PromptWords) -> bool:
    """A one-word concept after a verb ("a knight fighting a dragon"): a side subject, not the image's."""
    if ev.end - ev.start != 1 or ev.start == 0:
        return False
    for k in range(ev.start - 1, max(-1, ev.start - 4), -1):
        token = p.tokens[k]
        if token.is_separator:
            return False
        if token.raw.endswith("ing") and len(token.raw) > 5:
            return True
    return False


# -- judging one candidate --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Judged:
    """One LoRA's score for a prompt, the evidence it stands on, and why it is refused ("" if it is not)."""

    index: int
    score: float
    evidence: tuple[Evidence, ...]
    refused: str  # why it cannot be picked ("" when it can)


def judge(
    i: int, found: list[Evidence], index: LoraIndex, p: PromptWords, used: set[int], threshold: float
) -> Judged:
    """Judge LoRA ``i`` on its ``found`` evidence: mentions and words ``used`` by earlier picks do not count,
    secondary words count half; refused when what is left falls under ``threshold`` or lacks a needed name."""
    profile = index.profiles[i]
    record = index.records[i]
    kept: list[Evidence] = []
    mentions: list[str] = []
    shared: list[str] = []
    covered: set[int] = set()
    phrases: set[str] = set()
    known = index.vocabulary(i)
    mentioned: set[int] = set()  # words of a phrase that is a mention: no part of it is a style request
    figures: list[str] = []
    parts: list[str] = []  # "dragon fruit": the concept word is part of a compound naming something else
    senses: list[str] = []  # "clay tennis court": the LoRA's word in another sense (lora_senses.py)
    if profile.kind != "identity":
        for ev in found:
            if _is_mention(ev, p, known) or (profile.kind == "style" and _looks_of_thing(ev, p, known)):
                mentioned |= set(range(ev.start, ev.end))
            elif profile.kind == "concept" and ev.end > ev.start and (material := _figure(ev, p)):
                mentioned |= set(range(ev.start, ev.end))
                figures.append(f"{ev.phrase} ({material})")
            elif profile.kind == "concept" and (head := _compound_head(ev, p, known)):
                mentioned |= set(range(ev.start, ev.end))
                parts.append(head)
            elif why := other_sense(ev, p, known, profile.kind) or _in_photo(ev, p, known, profile, record):
                mentioned |= set(range(ev.start, ev.end))
                senses.append(why)
    else:
        for ev in found:
            if ev.field == "name" and (why := other_sense(ev, p, known, profile.kind)):
                mentioned |= set(range(ev.start, ev.end))
                senses.append(why)
    for ev in sorted(found, key=lambda e: (e.field == "text", -e.weight, e.start)):  # text words last
        span = set(range(ev.start, ev.end))
        if span & used:
            shared.append(ev.phrase)
            continue
        if span & covered or ev.phrase in phrases:
            continue  # these words already count, or this phrase already counted once
        if span & mentioned:
            mentions.append(ev.phrase)
            continue
        if profile.kind == "concept" and _secondary(ev, p):
            ev = Evidence(ev.field, ev.phrase, ev.weight / 2, ev.start, ev.end)
        if profile.kind != "identity" and _modifier(ev, p, profile.trigger_parts, known):
            ratio = FIELD_WEIGHTS["partial"] / FIELD_WEIGHTS["name"]
            ev = Evidence("partial", ev.phrase, ev.weight * ratio, ev.start, ev.end)
        kept.append(ev)
        covered |= span
        phrases.add(ev.phrase)
    penalties = [n for n in profile.negatives if n in p.stems]
    score = sum(e.weight for e in kept) - 1.0 * len(penalties)
    strong = any(e.field in STRONG for e in kept)
    tags = support(kept)
    name = record.name
    if not kept:
        if shared:
            return Judged(
                i, 0.0, (), f"{name} stands only on words an earlier pick used ({', '.join(shared)})"
            )
        if figures:
            what = ", ".join(dict.fromkeys(figures))
            return Judged(
                i, 0.0, (), f"{name}: '{what}' is a figure made of that material here, not the thing"
            )
        if parts:
            what = ", ".join(dict.fromkeys(parts))
            return Judged(i, 0.0, (), f"{name}: '{what}' names another thing here, not the LoRA's concept")
        if senses:
            return Judged(i, 0.0, (), f"{name}: {'; '.join(dict.fromkeys(senses))}")
        if mentions:
            what = ", ".join(dict.fromkeys(mentions))
            return Judged(
                i,
                0.0,
                (),
                f"{name}: '{what}' names an object's material, a tool or a thing's print here, not a style",
            )
        return Judged(i, 0.0, (), "")
    if profile.kind == "identity" and not any(e.field == "trigger" or e.field == "name" for e in kept):
        matched = ", ".join(e.phrase for e in kept)
        why = f"{name} is one specific character/model; the prompt never names it (only {matched})"
        return Judged(i, score, tuple(kept), why)
    if not strong and tags < 2:
        return Judged(i, score, tuple(kept), "")
    if score < threshold:
        return Judged(i, score, tuple(kept), "")
    if penalties:
        note = f"{name}: its description says it is not for {', '.join(penalties)}"
        if score < threshold + 1.0:
            return Judged(i, score, tuple(kept), note)
    return Judged(i, score, tuple(kept), "")


def _in_photo(
    ev: Evidence, p: PromptWords, known: frozenset[str], profile: LoraProfile, record: ModelRecord
) -> str:
    """A style LoRA's words naming a thing shown in a photo (:func:`~.lora_senses.photo_mention`); its sidecar
    (Civitai) tags count as its words there ("photography" makes a style photographic)."""
    if profile.kind != "style":
        return ""
    return photo_mention(ev, p, known, record.sidecar.tags if record.sidecar is not None else ())


@functools.cache
def defining_terms(content_type: str) -> frozenset[str]:
    """The terms that define a medium content type (its highest-scored ones: "pixel art" for pixel art,
    "logo" for logo); none for a subject type or the photo fallback."""
    data = load_vocab("content_types")
    if content_type not in set(data["medium_types"]) | set(data["dominant_types"]):
        return frozenset()
    terms = data["terms"].get(content_type, {})
    top = max(terms.values(), default=0.0)
    return frozenset(term for term, score in terms.items() if score == top)


def support(evidence: Sequence[Evidence]) -> float:
    """Training and Civitai tags matched (a minor caption tag counts half)."""
    return sum(1.0 if e.field in ("tag", "civitai") else 0.5 if e.field == "minor" else 0.0 for e in evidence)


def family_name(family: Family) -> str:
    """The family as people write it (SD1, SDXL, FLUX)."""
    return family.value.upper()
