"""Rule-based prompt analysis: curated vocabularies (``vocab/*.json``) over the prompt's words.

Offline and fast (well under a millisecond for a typical prompt). Emphasis counts: a term inside
``(…:1.4)`` weighs more, one inside ``[…]`` less. Words after a negation ("no people", "without
text") do not count as content; they are reported as negative cues instead. The content type is the
medium when one is clearly named (anime, painting, 3D render …), else the subject (portrait,
landscape, food …), else "photo".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from .analysis import PromptAnalysis, Subject
from .aspect import FrameContext, infer_aspect, wide_scene
from .attention import WeightedChunk
from .content_decision import ContentDecision, decide_content_type, overrule
from .cue_reading import negation_cues, read_cues, read_nsfw
from .gloss import gloss_tokens
from .language import detect_language
from .lexicon import PhraseIndex, PhraseMatch, Token, content_index, load_vocab, tokenize
from .lexicon_fallback import LexiconReading, curated_family, read_lexicon
from .syntax import PromptDocument, parse_prompt, plain_text_of
from .word_roles import (
    attribute_words,
    borrowed_tag_points,
    distant_words,
    modifier_words,
    object_participle,
    purpose_words,
    viewpoint_words,
)

__all__ = ["ContentDecision", "analyze_prompt", "decide_content_type", "prompt_tokens"]

_NEGATIONS = frozenset(
    {"no", "without", "not", "never", "sin", "ohne", "sans", "senza", "sem", "без", "kein", "keine"}
)


def _clamp(weight: float) -> float:
    return max(0.0, min(weight, 2.0))


def prompt_tokens(parts: Iterable[tuple[WeightedChunk, ...]]) -> list[Token]:
    """Weighted tokens of each part's plain chunks; parts and BREAKs become ``,`` separators."""
    tokens: list[Token] = []
    for chunks in parts:
        if tokens:
            tokens.append(Token(",", ",", 1.0))
        for chunk in chunks:
            if chunk.is_break or chunk.text == "BREAK":
                tokens.append(Token(",", ",", 1.0))
            else:
                tokens.extend(tokenize(chunk.text, chunk.weight))
    return tokens


def _negated(tokens: list[Token]) -> set[int]:
    out: set[int] = set()
    for i, token in enumerate(tokens):
        if token.raw in _NEGATIONS:
            for j in range(i + 1, min(i + 5, len(tokens))):
                if tokens[j].is_separator:
                    break
                out.add(j)
    return out


@functools.cache
def _subject_index() -> PhraseIndex:
    data = load_vocab("subjects")
    entries = [("noun", label, term, 0.0) for label, terms in data["nouns"].items() for term in terms]
    entries += [("tag", label, term, float(n)) for term, (label, n) in data["danbooru_counts"].items()]
    entries += [("count", "count", term, float(n)) for term, n in data["count_words"].items()]
    entries += [("crowd", "person", term, 10.0) for term in data["crowd_words"]]
    entries += [("group", label, term, float(n)) for term, (label, n) in data["group_nouns"].items()]
    return PhraseIndex(entries)


def _tool_mentions(tokens: list[Token]) -> set[int]:
    """Indices of tool nouns ("sticks" of "charcoal sticks", "brushes" of "watercolor brushes"): a medium
    word right before one names the tool, not the picture's medium."""
    tools = load_vocab("content_types")["tool_nouns"]
    out = set()
    for i, token in enumerate(tokens[1:], 1):
        following = tokens[i + 1].stem if i + 1 < len(tokens) else ""
        if (token.raw in tools or token.stem in tools) and following not in _TOOL_USES:
            out.add(i)
    return out


#: What a tool word goes on to name when it is about the picture ("brush strokes", "pen drawing").
_TOOL_USES = frozenset({"stroke", "work", "drawing", "art", "style", "lettering", "technique"})


def _idle_possessors(tokens: list[Token]) -> set[int]:
    """Possessors that are not in the picture: "children's book", "bird's eye view", "a teenager's bedroom"
    (an owl's face shows the owl)."""
    types = load_vocab("content_types")
    compounds, places = types["possessive_compounds"], types["possessed_places"]
    out = set()
    for i, token in enumerate(tokens[:-1]):
        following = tokens[i + 1].stem
        if token.raw.endswith(("'s", "\u2019s")) and (
            f"{token.stem} {following}" in compounds or following in places  # "a teenager's bedroom"
        ):
            out.add(i)
    return out


def _subjects(
    tokens: list[Token],
    curated: list[PhraseMatch],
    negated: set[int],
    idle: set[int],
    lexicon: LexiconReading,
) -> tuple[tuple[Subject, ...], int]:
    """Subjects of the ``curated`` matches of subjects.json (less those a longer lexicon noun hides) and of
    the lexicon."""
    counts_at: dict[int, int] = {}
    found: dict[str, Subject] = {}
    tagged: set[str] = set()
    types = load_vocab("content_types")
    for match in sorted([*curated, *lexicon.subjects], key=lambda m: m.start):
        if match.start in negated or match.end - 1 in idle:
            continue
        if lexicon.hides(match, curated_family(match.key, match.label, types), types):
            continue  # "dog" of "hot dog"
        if match.key == "count":
            counts_at[match.end] = int(match.value)
            continue
        if match.key in ("tag", "crowd", "group"):
            count = int(match.value)
            if match.key == "tag" and match.term != "solo":
                tagged.add(match.label)
        else:
            count = next(
                (counts_at[e] for e in (match.start, match.start - 1, match.start - 2) if e in counts_at), 0
            )
            last = tokens[match.end - 1] if match.end > 0 else None
            plural = last is not None and last.raw != last.stem
            count = count or (2 if plural else 1)
        previous = found.get(match.label)
        if previous is None or count > previous.count:
            found[match.label] = Subject(match.label, count, match.term)
    humans = set(load_vocab("content_types")["human_subjects"])
    if tagged & humans:  # danbooru count tags (1girl, 2boys …) are the authority on people
        found = {k: v for k, v in found.items() if k not in humans or k in tagged}
    if "person" in found and found["person"].count <= 1 and any(k in humans for k in found if k != "person"):
        del found["person"]  # "a woman, person": one person, named more precisely
    subjects = tuple(found.values())
    return subjects, sum(s.count for s in subjects)


def _subject_evidence(
    evidence: dict[str, float], subjects: tuple[Subject, ...], scene: float, types: Mapping[str, Any]
) -> None:
    """Content evidence from what the prompt shows: each subject's kind (an insect is an animal, a
    strawberry food), face and close-up words on an animal with no person (its portrait is an animal
    picture), and open scenery when nothing stands in it ("the great plains under a storm")."""
    kinds = types["subject_content"]
    for subject in subjects:
        label = kinds.get(subject.label)
        if label is not None:
            evidence[label] = max(evidence.get(label, 0.0), types["subject_points"])
    labels = {s.label for s in subjects}
    animal = any(kinds.get(label) == "animal" for label in labels)
    if "portrait" in evidence and animal and not labels & set(types["human_subjects"]):
        evidence["portrait"] *= types["animal_portrait_discount"]  # "a fox's face": the animal's portrait
    shown = any(evidence.get(label, 0.0) >= types["subject_threshold"] for label in types["subject_types"])
    if scene >= 1.0 and not shown and not subjects:
        evidence["landscape"] = max(evidence.get("landscape", 0.0), types["scene_points"] * scene)


def analyze_prompt(
    prompt: str | PromptDocument,
    *,
    extra_evidence: Mapping[str, float] | None = None,
    decided: tuple[str, float] | None = None,
) -> PromptAnalysis:
    """Analyse ``prompt`` with the rules; ``extra_evidence`` adds content-type points (from embeddings or
    another model) before the decision; ``decided`` (a content type and its confidence, made elsewhere)
    replaces the decision, and the frame follows it. What a thing is comes from the words before its "with":
    the words after it ("a café with wicker chairs") count only when the rest says nothing ("photo")."""
    analysis, attributes = _analyze(prompt, extra_evidence, decided, attributes=False)
    if attributes and analysis.content_type == load_vocab("content_types")["fallback"]:
        analysis, _ = _analyze(prompt, extra_evidence, decided, attributes=True)
    return analysis


def _analyze(
    prompt: str | PromptDocument,
    extra_evidence: Mapping[str, float] | None,
    decided: tuple[str, float] | None,
    *,
    attributes: bool,
) -> tuple[PromptAnalysis, bool]:
    """The analysis, counting the words after "with" as content only when ``attributes``; and whether the
    prompt has such words (other than people and animals: "with her grandfather" is a companion)."""
    document = prompt if isinstance(prompt, PromptDocument) else parse_prompt(prompt)
    parts = [part.plain_chunks for part in document.subprompts]
    text = plain_text_of(parts)
    tokens = prompt_tokens(parts)
    language = detect_language(text, tokens)
    glossed = gloss_tokens(tokens, language.code)  # a German squirrel reaches the English words
    if glossed is not None:
        tokens = glossed.tokens
    negated = _negated(tokens)
    idle = _idle_possessors(tokens) | modifier_words(tokens) | distant_words(tokens)
    view = viewpoint_words(tokens)  # the camera's place: a setting word there still shows the setting
    backdrop = _backdrop_words(tokens, load_vocab("content_types"))
    evidence: dict[str, float] = {}
    anime_terms: dict[str, float] = {}
    tools = _tool_mentions(tokens)
    types = load_vocab("content_types")
    content = list(content_index().find(tokens, text))
    curated_subjects = list(_subject_index().find(tokens, text))
    attrs = attribute_words(tokens) - _beings(curated_subjects, types)
    if not attributes:
        idle |= attrs
    english = language.code == "en" or glossed is not None
    mediums = {*types["medium_types"], *types["dominant_types"]}
    purpose = purpose_words(tokens)
    skip = negated | idle | view | backdrop | (glossed.foreign if glossed is not None else frozenset())
    lexicon = read_lexicon(tokens, content, curated_subjects, skip, types, english=english)
    for match in content:
        if lexicon.hides(match, match.label, types):
            continue  # "dog" of "hot dog"
        if match.start in purpose and match.label in mediums:
            continue  # "a headshot for a speaker badge": what the picture is for, not its medium
        if attributes and match.start in attrs and match.label in mediums:
            continue  # "a cufflink with an engraved monogram": a detail on the thing, not the medium
        if match.start in backdrop and match.label in types["focal_types"]:
            continue  # "a moonlit bay, boats at anchor": the bay is the picture, the boats are in it
        if match.start in view and match.label not in types["setting_types"]:
            continue  # "seen from a seaplane": the seaplane is not in the picture
        if match.term in types["object_participles"] and object_participle(tokens, match.end, types):
            continue  # "a clown's painted face": the face is painted, not the picture
        if match.start not in negated and match.end - 1 not in idle and match.end not in tools:
            points = match.value * _clamp(match.weight)
            evidence[match.label] = evidence.get(match.label, 0.0) + points
            if match.label == "anime":
                anime_terms[match.term] = anime_terms.get(match.term, 0.0) + points
    if anime_terms:  # booru tags in a photo prompt are no anime medium
        evidence["anime"] -= borrowed_tag_points(anime_terms, evidence, types)
    for label, points in (extra_evidence or {}).items():
        evidence[label] = evidence.get(label, 0.0) + points
    for label, points in lexicon.focal.items():
        evidence[label] = max(evidence.get(label, 0.0), points)
    subjects, subject_count = _subjects(tokens, curated_subjects, negated, idle | view | backdrop, lexicon)
    kind_words = _kind_modifiers(tokens, [*curated_subjects, *lexicon.subjects], types)
    wide = wide_scene(tokens, text, kind_words)
    _subject_evidence(evidence, subjects, wide, types)
    if not any(evidence.get(label, 0.0) >= types["subject_threshold"] for label in types["subject_types"]):
        for label, points in lexicon.settings.items():  # a room, a building, a lake: only when nothing else
            evidence[label] = max(evidence.get(label, 0.0), points)
    humans = [s for s in subjects if s.label in types["human_subjects"]]
    alone = len(humans) == 1 and humans[0].count == 1  # the objects around a person do not matter
    if alone and wide < 1.0:  # one person in a vast scene is not a portrait
        evidence["portrait"] = evidence.get("portrait", 0.0) + types["single_person_bonus"]
    shot = _product_shot(content, negated, types)
    if shot and not humans:  # "an office chair, white background": whatever the object, a product shot
        evidence["product"] = evidence.get("product", 0.0) + types["product_shot_points"]
    decision = decide_content_type(evidence)
    people = sum(s.count for s in humans)
    if people >= 2 and wide < 1.0 and decision.content_type in types["people_scene_types"]:
        # people in a place (or a crowded train) are the picture: a photo of them, not of the place
        decision = decide_content_type(
            {k: v for k, v in evidence.items() if k not in types["people_scene_types"]}
        )
    if decided is not None:
        decision = overrule(decision, *decided)
    group = (
        any(s.count >= 2 for s in subjects) or sum(s.label in types["human_subjects"] for s in subjects) >= 2
    )
    cues = read_cues(tokens, text, negated)
    cues["negative"].extend(negation_cues(tokens, negated))
    nsfw, nsfw_score = read_nsfw(tokens, text)
    aspect = infer_aspect(
        document.text,
        text,
        tokens,
        FrameContext(
            decision.content_type, decision.subject_type, decision.confidence, group, alone, kind_words
        ),
    )
    cue_fields: dict[str, Any] = {field: tuple(values) for field, values in cues.items()}
    return PromptAnalysis(
        content_type=decision.content_type,
        content_confidence=decision.confidence,
        content_scores=decision.scores,
        subjects=subjects,
        subject_count=subject_count,
        aspect=aspect,
        nsfw=nsfw,
        nsfw_score=nsfw_score,
        language=language.code,
        language_confidence=language.confidence,
        notes=_gloss_note(glossed.pairs) if glossed is not None else (),
        **cue_fields,
    ), bool(attrs)


def _kind_modifiers(
    tokens: list[Token], subjects: list[PhraseMatch], types: Mapping[str, Any]
) -> frozenset[int]:
    """Words right before a creature or vehicle noun, within its phrase: they say what kind it is ("highland"
    of "highland cow", "sea" of "sea turtle", "river" of "river barge"), not what the scene is."""
    kinds, families = types["subject_content"], types["lexicon"]["families"]
    moving = {"animal", "vehicle"}
    out = set()
    for m in subjects:
        family = kinds.get(m.label, families.get(m.label, m.label))
        if m.start > 0 and family in moving and not tokens[m.start - 1].is_separator:
            out.add(m.start - 1)
    return frozenset(out)


def _backdrop_words(tokens: list[Token], types: Mapping[str, Any]) -> set[int]:
    """The words after the first comma when the first part is open scenery (``backdrop_scene`` or more) with
    no focal thing or being of its own ("a sea stack off a grassy headland, puffins, overcast"): things in
    the scene, not its subject."""
    first = next((i for i, t in enumerate(tokens) if t.is_separator), len(tokens))
    if first >= len(tokens) or wide_scene(tokens[:first], "") < types["backdrop_scene"]:
        return set()
    head = tokens[:first]
    focal = set(types["focal_types"])
    if any(m.label in focal for m in content_index().find(head)) or any(
        m.key != "count" for m in _subject_index().find(head)
    ):
        return set()
    return set(range(first + 1, len(tokens)))


def _product_shot(content: list[PhraseMatch], negated: set[int], types: Mapping[str, Any]) -> str:
    """The product-photography words of the prompt ("packshot", "white background", "commercial"), or ""."""
    cues = set(types["product_shot_terms"])
    return ", ".join(m.term for m in content if m.term in cues and m.start not in negated)


def _beings(subjects: list[PhraseMatch], types: Mapping[str, Any]) -> set[int]:
    """Token indices of the people and animals the curated vocabularies name (a companion "with" someone
    is in the picture)."""
    humans, kinds = set(types["human_subjects"]), types["subject_content"]
    return {
        k
        for m in subjects
        if m.start >= 0 and (m.label in humans or kinds.get(m.label) == "animal")
        for k in range(m.start, m.end)
    }


def _gloss_note(pairs: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return ("read in English: " + ", ".join(f"{source} → {english}" for source, english in pairs),)
