"""What each catalogued LoRA is evidence for: phrases from its trigger words, name, kohya tag counts and
sidecar (Civitai tags, description and what the description says it is *not* for), indexed per family.

A prompt is matched phrase by phrase (``plate armor`` is one phrase, not two words), so every piece of
evidence knows which words of the prompt it stands on: the recommender (:mod:`.loras`) uses that to
tell a style request from a mention and to refuse a second pick that only shares the first pick's words.
Booru quality/count tags (``masterpiece``, ``1girl`` …) and Civitai category tags are never indexed.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..catalog.families import Family
from ..catalog.records import ModelKind, ModelRecord, Status
from ..prompt.lexicon import PhraseIndex, Token, load_vocab, stem
from ._text import tokens

__all__ = ["Evidence", "LoraIndex", "LoraProfile", "lora_terms"]

#: field → base weight of one matched phrase (before specificity).
FIELD_WEIGHTS = {
    "trigger": 3.0,
    "name": 2.0,
    "tag": 1.2,
    "civitai": 0.8,
    "partial": 0.8,
    "minor": 0.3,
    "text": 0.3,
}
#: A trigger's two words with a word or two between them count this much of the trigger.
LOOSE_TRIGGER = 0.8
_BREAKS = frozenset({"and", "or", "vs", "versus", "next", "beside", "behind", "than", "but"})
#: Fields that name what a LoRA is for (a pick needs one of them, or two tags).
STRONG = frozenset({"trigger", "name"})
_SUPPORT = {"tag": 1.0, "civitai": 1.0, "minor": 0.5}  # how much a matched tag says (a minor one half)
_PRIOR_DOCS = 100  # virtual LoRAs sharing no phrase: a small catalog's phrases still count as rare
_NAME_WORDS = (
    "lora lycoris locon loha style xl sdxl sd sd1 sd15 sd21 sd2 flux v1 v2 v3 v4 v5 v6 final fp16 model"
)
_NAME_NOISE = frozenset((_NAME_WORDS + " pony illustrious noob epoch").split(" "))
_NEGATION = re.compile(
    r"\b(?:not|no|never|without|except|avoid|doesn't|does not|isn't|won't)\b(?P<rest>[^.;!?]*)"
)


@functools.cache
def lora_terms() -> dict[str, frozenset[str]]:
    """The word lists of ``vocab/lora_terms.json`` as lower-case sets (cached per process)."""
    data = load_vocab("lora_terms")
    return {key: frozenset(v.lower() for v in values) for key, values in data.items() if key != "_doc"}


@dataclass(frozen=True, slots=True)
class LoraProfile:
    """One LoRA's kind (``identity``, ``style`` or ``concept``) and its evidence phrases."""

    kind: str
    phrases: tuple[tuple[str, str, float], ...]  # (field, phrase, weight)
    negatives: tuple[str, ...]  # words its description says it is not for
    trigger_parts: frozenset[str] = frozenset()  # the words of its multi-word triggers ("food photo")


@dataclass(frozen=True, slots=True)
class Evidence:
    """A phrase of a LoRA's profile found in the prompt at token span [start, end)."""

    field: str
    phrase: str
    weight: float
    start: int
    end: int

    @property
    def label(self) -> str:
        return f"{self.field}:{self.phrase}"


@functools.lru_cache(maxsize=65536)
def _norm(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


def _kind(record: ModelRecord) -> str:
    terms = lora_terms()
    side = {t.lower() for t in record.sidecar.tags} if record.sidecar is not None else set()
    if side & terms["identity_categories"]:
        return "identity"
    if side & terms["style_categories"]:
        return "style"
    return "concept"


def _description_negatives(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for found in _NEGATION.finditer(text.lower()):
        out += tokens(found.group("rest"))
    return tuple(dict.fromkeys(stem(w) for w in out))


def _profile(record: ModelRecord) -> LoraProfile:
    terms = lora_terms()
    generic, categories = terms["generic_tags"], terms["category_tags"]
    phrases: dict[str, tuple[str, float]] = {}

    def add(field: str, phrase: str, weight: float) -> None:
        phrase = _norm(phrase)
        if not phrase or phrase in generic or len(phrase) < 2:
            return
        if phrase not in phrases or phrases[phrase][1] < weight:
            phrases[phrase] = (field, weight)

    for trigger in record.trigger_words:
        for part in trigger.split(","):
            add("trigger", part, FIELD_WEIGHTS["trigger"])
            words = tokens(part)
            if len(words) > 1:
                for word in words:
                    add("partial", word, FIELD_WEIGHTS["partial"])
    lora = record.info.lora
    for name in (record.name, lora.output_name if lora is not None else None):
        for word in tokens(name or ""):
            if word not in _NAME_NOISE and not word.isdigit() and len(word) > 2:
                add("name", word, FIELD_WEIGHTS["name"])
    if lora is not None and lora.top_tags:
        top = max(t.count for t in lora.top_tags) or 1  # records made by hand may list them unsorted
        for tag in lora.top_tags[:20]:
            ratio = tag.count / top
            major = ratio >= 0.5
            add(
                "tag" if major else "minor",
                tag.tag,
                FIELD_WEIGHTS["tag" if major else "minor"] * (0.5 + ratio / 2),
            )
    parts = frozenset(w for trigger in record.trigger_words for w in _trigger_words(trigger))
    negatives: tuple[str, ...] = ()
    side = record.sidecar
    if side is not None:
        for civitai_tag in side.tags:
            if _norm(civitai_tag) not in categories:
                add("civitai", civitai_tag, FIELD_WEIGHTS["civitai"])
        if side.description:
            description = side.description[:400]
            negatives = _description_negatives(description)
            positive = _NEGATION.sub(" ", description.lower())
            for word in tokens(positive):
                if stem(word) not in negatives:
                    add("text", word, FIELD_WEIGHTS["text"])
    if negatives:
        own = {stem(w) for p in phrases for w in p.split()}
        negatives = tuple(n for n in negatives if n not in own)
    return LoraProfile(
        _kind(record),
        tuple((field, phrase, weight) for phrase, (field, weight) in phrases.items()),
        negatives,
        parts,
    )


def _spellings(phrase: str) -> tuple[str, ...]:
    """``phrase`` and its hyphenated or spaced twin: "tilt shift" is also written "tilt-shift", "top-down"
    also "top down"."""
    if "-" in phrase:
        return phrase, phrase.replace("-", " ")
    words = phrase.split(" ")
    if 1 < len(words) <= 3 and all(w.isalnum() for w in words):
        return phrase, "-".join(words)
    return (phrase,)


def _trigger_words(trigger: str) -> list[str]:
    """The content words of a trigger phrase when it has two or more ("food photo"; "ghibli style" has one)."""
    words = [w for part in trigger.split(",") for w in tokens(part)]
    return words if len(words) > 1 else []


class LoraIndex:
    """LoRA records (speed LoRAs and unusable files left out) with their evidence phrases per family.

    Built once per catalog state (the planner caches it; see :mod:`.lora_cache`)."""

    def __init__(self, records: Iterable[ModelRecord]) -> None:
        usable = [r for r in records if r.kind is ModelKind.LORA and r.status is Status.OK]
        fast = [r for r in usable if r.info.lora is not None and r.info.lora.speed is not None]
        self.speed: tuple[ModelRecord, ...] = tuple(fast)  # distillation LoRAs: never recommended
        fast_ids = {id(r) for r in fast}
        self.records: tuple[ModelRecord, ...] = tuple(r for r in usable if id(r) not in fast_ids)
        self.profiles: tuple[LoraProfile, ...] = tuple(_profile(r) for r in self.records)
        self._vocabulary: dict[int, frozenset[str]] = {}
        self._families = tuple(dict.fromkeys(r.family for r in self.records))
        df: dict[str, int] = {}
        for profile in self.profiles:
            for _, phrase, _ in profile.phrases:
                df[phrase] = df.get(phrase, 0) + 1
        n = len(self.records) + _PRIOR_DOCS
        scale = math.log(1 + n)
        # phrase → family → [(record index, field, weight x specificity)]
        self._postings: dict[str, dict[Family, list[tuple[int, str, float]]]] = {}
        self._weighted: dict[int, list[tuple[str, str, float]]] = {}  # record → (field, phrase, weight)
        self._triggers: dict[str, dict[Family, list[int]]] = {}  # trigger phrase → family → records
        factor = {  # 0.5 + specificity / 2, where specificity is the phrase's scaled idf
            phrase: 0.5 + (math.log(1 + (n - count + 0.5) / (count + 0.5)) / scale) / 2
            for phrase, count in df.items()
        }
        for i, (record, profile) in enumerate(zip(self.records, self.profiles, strict=True)):
            mine = self._weighted[i] = []
            for field, phrase, weight in profile.phrases:
                weighted = weight * factor[phrase]
                by_family = self._postings.get(phrase)
                if by_family is None:
                    by_family = self._postings[phrase] = {}
                by_family.setdefault(record.family, []).append((i, field, weighted))
                mine.append((field, phrase, weighted))
                if field == "trigger":
                    self._triggers.setdefault(phrase, {}).setdefault(record.family, []).append(i)
        self._phrases = PhraseIndex(
            (phrase, phrase, written, 0.0) for phrase in self._postings for written in _spellings(phrase)
        )
        # two-word triggers by their words, for a trigger split by a word or two
        self._loose: dict[tuple[str, str], list[str]] = {}
        for phrase in self._triggers:
            words = tuple(stem(w) for w in _trigger_words(phrase))
            if len(words) == 2 and tuple(stem(w) for w in phrase.split()) == words:
                self._loose.setdefault((words[0], words[1]), []).append(phrase)
        generic = lora_terms()["generic_tags"]
        self._generic = PhraseIndex((g, g, g, 0.0) for g in generic)

    def __len__(self) -> int:
        return len(self.records)

    def vocabulary(self, i: int) -> frozenset[str]:
        """The word stems of record ``i``'s evidence phrases (what its training images showed)."""
        known = self._vocabulary.get(i)
        if known is None:
            known = frozenset(stem(w) for _, phrase, _ in self.profiles[i].phrases for w in phrase.split())
            self._vocabulary[i] = known
        return known

    def find(self, prompt_tokens: Sequence[Token], skip: set[int]) -> dict[str, list[tuple[int, int, float]]]:
        """Indexed phrases in the prompt: phrase → (start, end, attention weight) of each occurrence (token
        indices in ``skip``, such as negated words, are not evidence)."""
        out: dict[str, list[tuple[int, int, float]]] = {}
        for found in self._phrases.find(list(prompt_tokens)):
            if not any(k in skip for k in range(found.start, found.end)):
                out.setdefault(found.key, []).append(
                    (found.start, found.end, max(0.3, min(found.weight, 2.0)))
                )
        for phrase, start, end in self._loose_triggers(prompt_tokens, out):
            if not any(k in skip for k in (start, end - 1)):
                weight = max(0.3, min(prompt_tokens[start].weight, 2.0)) * LOOSE_TRIGGER
                out.setdefault(phrase, []).append((start, end, weight))
        return out

    def _loose_triggers(
        self, prompt_tokens: Sequence[Token], found: dict[str, list[tuple[int, int, float]]]
    ) -> list[tuple[str, int, int]]:
        """Two-word triggers whose words come in order with one or two words between them, within a clause
        and not across "and"/"or" ("samurai in lacquered armor" says "samurai armor"; "a dragon and a girl"
        does not say "dragon girl")."""
        out: list[tuple[str, int, int]] = []
        if not self._loose:
            return out
        n = len(prompt_tokens)
        for i, token in enumerate(prompt_tokens):
            seen: set[str] = set()
            for k in range(i + 2, min(i + 4, n)):
                gap = prompt_tokens[k - 1]
                if gap.is_separator or gap.raw in _BREAKS:
                    break
                for phrase in self._loose.get((token.stem, prompt_tokens[k].stem), ()):
                    if phrase not in found and phrase not in seen:
                        seen.add(phrase)  # the nearest second word only
                        out.append((phrase, i, k + 1))
        return out

    def candidates(
        self,
        found: dict[str, list[tuple[int, int, float]]],
        family: Family,
        keep: Callable[[float, bool, float], bool],
    ) -> dict[int, list[Evidence]]:
        """Evidence of the records of ``family`` that ``keep(total weight, named by trigger or name, tag
        support)`` accepts; the totals are counted once per phrase, so they bound what the evidence can add up to."""
        totals: dict[int, list[float]] = {}
        for phrase, spans in found.items():
            boost = max(w for _, _, w in spans)
            for i, field, weight in self._postings[phrase].get(family, ()):
                acc = totals.get(i)
                if acc is None:
                    acc = totals[i] = [0.0, 0.0, 0.0]
                acc[0] += weight * boost
                if field in STRONG:
                    acc[1] = 1.0
                acc[2] += _SUPPORT.get(field, 0.0)
        return {
            i: self.evidence(i, found)
            for i, (t, named, support) in totals.items()
            if keep(t, named > 0, support)
        }

    def triggered_by(self, phrase: str, family: Family) -> tuple[int, ...]:
        """Records of ``family`` whose trigger is ``phrase``."""
        return tuple(self._triggers.get(phrase, {}).get(family, ()))

    def named(self, found: dict[str, list[tuple[int, int, float]]], family: Family) -> set[int]:
        """Records of ``family`` whose trigger phrase the prompt contains."""
        return {i for phrase in found for i in self._triggers.get(phrase, {}).get(family, ())}

    def families(self) -> tuple[Family, ...]:
        """The families with LoRAs in the index."""
        return self._families

    def evidence(self, i: int, found: dict[str, list[tuple[int, int, float]]]) -> list[Evidence]:
        """Every occurrence in the prompt of record ``i``'s phrases."""
        return [
            Evidence(field, phrase, weight * w, start, end)
            for field, phrase, weight in self._weighted.get(i, ())
            if phrase in found
            for start, end, w in found[phrase]
        ]

    def generic_tags(self, prompt_tokens: Sequence[Token]) -> tuple[str, ...]:
        """The booru quality/count tags the prompt uses (never evidence for a LoRA)."""
        return tuple(dict.fromkeys(m.term for m in self._generic.find(list(prompt_tokens))))
