"""LoRA recommendation: BM25 over trigger words, training tags, names and sidecar text.

:class:`LoraIndex` is built once from catalog records (an inverted index with field-weighted term
counts); :func:`recommend_loras` scores it against a prompt and its analysis, keeps the family's LoRAs
above a confidence threshold, drops one of two that fight for the same style cue and returns at most
``limit`` recommendations with their weight, trigger word and evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .._assets import portable_path
from ..catalog.families import Family
from ..catalog.records import ModelKind, ModelRecord, Status
from ..plan import Decision, LoraUse, Source
from ..prompt.analysis import PromptAnalysis
from ._text import record_text, tokens

__all__ = [
    "DEFAULT_LORA_WEIGHT",
    "LoraIndex",
    "LoraPick",
    "Similarity",
    "insert_triggers",
    "lora_weight",
    "recommend_loras",
]

DEFAULT_LORA_WEIGHT = 0.8
_FIELDS = (("trigger", 3.0), ("name", 2.0), ("tag", 1.0), ("minor", 1.0), ("text", 0.5))
_K1, _B = 1.2, 0.75
#: Evidence that says what a LoRA is for. A "minor" caption tag (under half the count of its most frequent
#: tag) only names what some training images happened to contain: alone, it recommends nothing.
_DISTINCT = ("trigger:", "name:", "tag:", "text:", "semantic:")
_PRIOR_DOCS = 100  # virtual LoRAs sharing no word: a small catalog's words still count as rare


@dataclass(frozen=True, slots=True)
class LoraPick:
    """A recommended LoRA: the record, its use in the plan, the trigger to add, score and evidence."""

    record: ModelRecord
    use: LoraUse
    trigger: str | None
    score: float
    confidence: float
    evidence: tuple[str, ...]
    note: str = ""  # set when learned preferences added or reweighted it: the reason

    @property
    def decision(self) -> Decision:
        """The Decision recorded in the plan."""
        if self.note:
            return Decision("lora", f"{self.use.name}:{self.use.unet_weight:g}", Source.LEARNED, self.note)
        why = f"score {self.score:.2f} (confidence {self.confidence:.2f}); matched {', '.join(self.evidence)}"
        return Decision("lora", f"{self.use.name}:{self.use.unet_weight:g}", Source.CATALOG, why)


def lora_weight(record: ModelRecord) -> tuple[float, str]:
    """The sidecar's preferred weight, else the default 0.8 (LoRA metadata carries no weight)."""
    if record.sidecar is not None and record.sidecar.preferred_weight is not None:
        return record.sidecar.preferred_weight, "sidecar preferred weight"
    return DEFAULT_LORA_WEIGHT, "default weight"


def _fields(record: ModelRecord) -> Iterable[tuple[str, str]]:
    for word in record.trigger_words:
        yield "trigger", word
    yield "name", record.name
    lora = record.info.lora
    if lora is not None:
        if lora.output_name:
            yield "name", lora.output_name
        top = lora.top_tags[0].count if lora.top_tags else 0
        for tag in lora.top_tags[:20]:
            yield ("tag" if 2 * tag.count >= top else "minor"), tag.tag
    for text in record_text(record):
        yield "text", text


class LoraIndex:
    """Inverted index of LoRA records (speed LoRAs and unusable files left out)."""

    def __init__(self, records: Iterable[ModelRecord]) -> None:
        usable = [r for r in records if r.kind is ModelKind.LORA and r.status is Status.OK]
        fast = [r for r in usable if r.info.lora is not None and r.info.lora.speed is not None]
        self.speed: tuple[ModelRecord, ...] = tuple(fast)  # distillation LoRAs: never recommended
        fast_ids = {id(r) for r in fast}
        self.records: tuple[ModelRecord, ...] = tuple(r for r in usable if id(r) not in fast_ids)
        counted: list[dict[str, float]] = []
        fields: list[dict[str, str]] = []
        weights = dict(_FIELDS)
        for record in self.records:
            counts: dict[str, float] = {}
            field_of: dict[str, str] = {}
            for field, text in _fields(record):
                for word in tokens(text):
                    counts[word] = counts.get(word, 0.0) + weights[field]
                    field_of.setdefault(word, field)
            counted.append(counts)
            fields.append(field_of)
        lengths = [sum(c.values()) for c in counted]
        avg = (sum(lengths) / len(lengths)) if lengths else 1.0
        df: dict[str, int] = {}
        for counts in counted:
            for word in counts:
                df[word] = df.get(word, 0) + 1
        n = len(self.records) + _PRIOR_DOCS
        idf = {w: math.log(1 + (n - k + 0.5) / (k + 0.5)) for w, k in df.items()}
        # word → family → [(record index, idf x saturated tf, field)]: scoring is additions only
        self._postings: dict[str, dict[Family, list[tuple[int, float, str]]]] = {}
        for i, (record, counts) in enumerate(zip(self.records, counted, strict=True)):
            norm = _K1 * (1 - _B + _B * lengths[i] / avg)
            for word, tf in counts.items():
                by_family = self._postings.setdefault(word, {})
                part = idf[word] * tf * (_K1 + 1) / (tf + norm)
                by_family.setdefault(record.family, []).append((i, part, fields[i][word]))
        self._scale = math.log(1 + n) or 1.0

    def __len__(self) -> int:
        return len(self.records)

    def scores(self, query: Sequence[str], family: Family) -> dict[int, float]:
        """BM25 score per record index of ``family`` (records of other families are never scored)."""
        totals: dict[int, float] = {}
        for word in dict.fromkeys(query):
            for i, part, _ in self._postings.get(word, {}).get(family, ()):
                totals[i] = totals.get(i, 0.0) + part
        return totals

    def evidence(self, i: int, query: Sequence[str]) -> tuple[str, ...]:
        """``field:word`` for each query word record ``i`` matched (its strongest field)."""
        family = self.records[i].family
        out = []
        for word in dict.fromkeys(query):
            hit = next((f for j, _, f in self._postings.get(word, {}).get(family, ()) if j == i), None)
            if hit is not None:
                out.append(f"{hit}:{word}")
        return tuple(out)

    def confidence(self, score: float) -> float:
        """A score relative to one rare word's (log corpus size): comparable across corpus sizes."""
        return score / self._scale


def _style_words(analysis: PromptAnalysis | None) -> set[str]:
    if analysis is None:
        return set()
    return {w for label in analysis.style_labels for w in tokens(label)}


def _trigger(record: ModelRecord) -> str | None:
    words = record.trigger_words
    return words[0].split(",")[0].strip() or None if words else None


#: ``similarity(query, texts)`` → cosine similarity of the query with each text (e.g. sentence embeddings).
Similarity = Callable[[str, Sequence[str]], Sequence[float]]


def _description(record: ModelRecord) -> str:
    """What a LoRA is about, in words, for semantic comparison."""
    parts = [record.name.replace("_", " "), *record.trigger_words]
    lora = record.info.lora
    if lora is not None:
        parts += [t.tag for t in lora.top_tags[:10]]
    if record.sidecar is not None and record.sidecar.description:
        parts.append(record.sidecar.description[:200])
    return ", ".join(p for p in parts if p)


def _semantic(
    prompt: str, index: LoraIndex, scored: dict[int, float], similarity: Similarity, weight: float
) -> dict[int, tuple[float, float]]:
    """Confidence plus ``weight`` x similarity for the lexically matching candidates: (combined, similarity)."""
    ids = list(scored)
    sims = similarity(prompt, [_description(index.records[i]) for i in ids]) if ids else []
    return {
        i: (index.confidence(scored[i]) + weight * max(0.0, sim), sim)
        for i, sim in zip(ids, sims, strict=True)
    }


def recommend_loras(
    prompt: str,
    index: LoraIndex,
    family: Family,
    analysis: PromptAnalysis | None = None,
    *,
    exclude: Iterable[str] = (),
    limit: int = 2,
    threshold: float = 1.5,
    similarity: Similarity | None = None,
    semantic_weight: float = 1.0,
) -> tuple[LoraPick, ...]:
    """At most ``limit`` LoRAs of ``family`` that fit ``prompt`` (paths or names in ``exclude`` skipped).

    With ``similarity`` (the ``semantic`` extra), every LoRA with lexical evidence is also compared with
    the prompt in meaning: its confidence gains ``semantic_weight`` x similarity before the threshold.
    """
    if limit <= 0 or not len(index):
        return ()
    styles = _style_words(analysis)
    query = tokens(prompt) + sorted(styles)
    skip = {e.lower() for e in exclude}
    scored = index.scores(query, family)
    combined: Mapping[int, tuple[float, float | None]]
    if similarity is not None:
        combined = _semantic(prompt, index, scored, similarity, semantic_weight)
    else:
        combined = {i: (index.confidence(s), None) for i, s in scored.items()}
    ranked = sorted((-c, index.records[i].name, i) for i, (c, _) in combined.items() if c >= threshold)
    picks: list[LoraPick] = []
    taken_styles: set[str] = set()
    for neg, _, i in ranked:
        record = index.records[i]
        if record.path.lower() in skip or record.name.lower() in skip:
            continue
        evidence = index.evidence(i, query)
        sim = combined[i][1]
        if sim is not None:
            evidence += (f"semantic:{sim:.2f}",)
        matched_styles = {e.split(":", 1)[1] for e in evidence} & styles
        if not matched_styles and not any(e.startswith(_DISTINCT) for e in evidence):
            continue  # only minor caption tags matched: not what the LoRA is for
        if matched_styles & taken_styles:
            continue  # another pick already serves this style cue
        taken_styles |= matched_styles
        weight, _ = lora_weight(record)
        use = LoraUse(record.name, portable_path(record.path), weight, weight, record.short_hash)
        picks.append(LoraPick(record, use, _trigger(record), scored[i], -neg, evidence))
        if len(picks) == limit:
            break
    return tuple(picks)


def insert_triggers(prompt: str, triggers: Iterable[str | None]) -> str:
    """``prompt`` with each trigger appended (``, trigger``) unless already present (case-insensitive)."""
    out = prompt
    for trigger in triggers:
        if trigger and trigger.lower() not in out.lower():
            out = f"{out}, {trigger}" if out.strip() else trigger
    return out
