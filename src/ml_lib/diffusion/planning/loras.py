"""LoRA recommendation: which catalogued LoRAs of the model's family fit a prompt, and why (or why none).

The prompt is matched against each LoRA's evidence phrases (:class:`~.lora_index.LoraIndex`). A LoRA is
picked only when its own evidence says what the image should *look like* or *be of*:

- a style LoRA's word used on an object in a product or still-life prompt (a *leather* wallet, *watercolor*
  brushes, a *charcoal* grill) is a mention, not a style request;
- a LoRA of a specific character, person or car model needs its name or trigger in the prompt (describing
  a car by its parts is not asking for that car model);
- booru quality/count tags (``masterpiece``, ``1girl``) are never evidence (tag soup);
- each pick stands on prompt words no earlier pick used (two kinds of armour share "armor": the second
  needs words of its own);
- when the prompt names a concept only another family's LoRA has, a looser same-family match is refused.

When nothing fits, :func:`choose_loras` says what was missing (``LoraChoice.reason``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .._assets import portable_path
from ..catalog.families import Family
from ..catalog.records import ModelRecord
from ..plan import Decision, LoraUse, Source
from ..prompt.analysis import PromptAnalysis
from .lora_index import STRONG, Evidence, LoraIndex
from .lora_judge import Judged, PromptWords, defining_terms, family_name, judge, read_prompt, support

__all__ = [
    "DEFAULT_LORA_WEIGHT",
    "LoraChoice",
    "LoraIndex",
    "LoraPick",
    "Similarity",
    "choose_loras",
    "insert_triggers",
    "lora_weight",
    "recommend_loras",
]

DEFAULT_LORA_WEIGHT = 0.8
#: Calibrated on the dev LoRA queries (benchmarks/lora_bench.py --calibrate); never on the held-out ones.
DEFAULT_THRESHOLD = 1.4
_SEMANTIC_CANDIDATES = 8

#: ``similarity(query, texts)`` → cosine similarity of the query with each text (e.g. sentence embeddings).
Similarity = Callable[[str, Sequence[str]], Sequence[float]]


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


@dataclass(frozen=True, slots=True)
class LoraChoice:
    """The picks, and when there are none, why: ``reason`` names what was missing or refused
    (empty when no LoRA of any family had evidence worth mentioning)."""

    picks: tuple[LoraPick, ...]
    reason: str = ""

    @property
    def decision(self) -> Decision | None:
        """A ``lora: none`` Decision when nothing was picked for a reason worth recording."""
        if self.picks or not self.reason:
            return None
        return Decision("lora", "none", Source.CATALOG, self.reason)


def lora_weight(record: ModelRecord) -> tuple[float, str]:
    """The sidecar's preferred weight, else the default 0.8 (LoRA metadata carries no weight)."""
    if record.sidecar is not None and record.sidecar.preferred_weight is not None:
        return record.sidecar.preferred_weight, "sidecar preferred weight"
    return DEFAULT_LORA_WEIGHT, "default weight"


def _trigger(record: ModelRecord) -> str | None:
    words = record.trigger_words
    return words[0].split(",")[0].strip() or None if words else None


def _description(record: ModelRecord) -> str:
    """What a LoRA is about, in words, for semantic comparison."""
    parts = [record.name.replace("_", " "), *record.trigger_words]
    lora = record.info.lora
    if lora is not None:
        parts += [t.tag for t in lora.top_tags[:10]]
    if record.sidecar is not None and record.sidecar.description:
        parts.append(record.sidecar.description[:200])
    return ", ".join(p for p in parts if p)


def choose_loras(
    prompt: str,
    index: LoraIndex,
    family: Family,
    analysis: PromptAnalysis | None = None,
    *,
    exclude: Iterable[str] = (),
    limit: int = 2,
    threshold: float = DEFAULT_THRESHOLD,
    similarity: Similarity | None = None,
    semantic_weight: float = 1.0,
) -> LoraChoice:
    """At most ``limit`` LoRAs of ``family`` that fit ``prompt`` (paths or names in ``exclude`` skipped),
    and when there are none, why. LoRAs of other families are never picked.

    With ``similarity`` (the ``semantic`` extra) each candidate with lexical evidence also gains
    ``semantic_weight`` x its similarity in meaning to the prompt.
    """
    if limit <= 0 or not len(index):
        return LoraChoice(())
    p = read_prompt(prompt, analysis)
    found = index.find(p.tokens, set(p.negated))
    lift = semantic_weight if similarity is not None else 0.0

    def keep(total: float, named: bool, support: float) -> bool:
        """Could be picked at best (rules that only remove evidence aside): most of a large catalog
        shares a word or two with any prompt and is dropped here, before the full judgement."""
        return total + lift >= threshold and (named or support + (1.0 if lift else 0.0) >= 2)

    ours = _without_claimed(index.candidates(found, family, keep))
    _add_medium(ours, index, family, analysis, found)
    skip = {e.lower() for e in exclude}
    sims: dict[int, float] = {}  # filled below for the strongest candidates when similarity is given

    def total(j: Judged) -> float:
        return j.score + semantic_weight * max(0.0, sims.get(j.index, 0.0)) if j.evidence else j.score

    ours_named = [
        set(range(e.start, e.end)) for evidence in ours.values() for e in evidence if e.field == "trigger"
    ]
    others = _other_family_fits(found, family, index, p, threshold, ours_named)
    used: set[int] = set()
    picks: list[LoraPick] = []
    refusals: list[str] = []
    first = [judge(i, ev, index, p, used, threshold) for i, ev in ours.items()]
    if similarity is not None and first:
        # meaning is compared for the lexically strongest few only: one prompt embedding per plan
        ids = [j.index for j in sorted(first, key=lambda j: -j.score)[:_SEMANTIC_CANDIDATES] if j.evidence]
        values = similarity(prompt, [_description(index.records[i]) for i in ids]) if ids else ()
        sims.update({i: float(v) for i, v in zip(ids, values, strict=True)})
    order = sorted(first, key=lambda j: (-total(j), index.records[j.index].name))
    for initial in order:
        record = index.records[initial.index]
        if record.path.lower() in skip or record.name.lower() in skip:
            continue
        judged = judge(initial.index, ours[initial.index], index, p, used, threshold) if used else initial
        if judged.refused:
            refusals.append(judged.refused)
            continue
        strong = any(e.field in STRONG for e in judged.evidence)
        tags = support(judged.evidence) + (1.0 if sims.get(judged.index, 0.0) >= 0.5 else 0.0)
        if not judged.evidence or total(judged) < threshold or (not strong and tags < 2):
            continue
        looser = _looser_than_other_family(judged, others, index)
        if looser:
            refusals.append(looser)
            continue
        evidence = tuple(e.label for e in judged.evidence)
        if judged.index in sims:
            evidence += (f"semantic:{sims[judged.index]:.2f}",)
        weight, _ = lora_weight(record)
        use = LoraUse(record.name, portable_path(record.path), weight, weight, record.short_hash)
        score = total(judged)
        picks.append(LoraPick(record, use, _trigger(record), score, score / 3.0, evidence))
        used |= {k for e in judged.evidence for k in range(e.start, e.end)}
        if len(picks) == limit:
            break
    if picks:
        return LoraChoice(tuple(picks))
    return LoraChoice((), _none_reason(family, index, others, refusals, p))


#: What the prompt's medium adds for a LoRA whose trigger is that medium's defining term: less than the
#: threshold, so it only tips a LoRA that has evidence of its own ("8bit retro game sprite": pixel art).
MEDIUM_WEIGHT = 1.0
_MEDIUM_CONFIDENCE = 0.6


def _add_medium(
    ours: dict[int, list[Evidence]],
    index: LoraIndex,
    family: Family,
    analysis: PromptAnalysis | None,
    found: dict[str, list[tuple[int, int, float]]],
) -> None:
    """Medium evidence: when the analysis is confident the prompt is pixel art (from "8bit", "sprite") or a
    logo, a LoRA triggered by that medium's defining term ("pixel art", "logo") gains ``MEDIUM_WEIGHT``
    even where the prompt never writes the term (it claims no words)."""
    if analysis is None or analysis.content_confidence < _MEDIUM_CONFIDENCE:
        return
    for phrase in defining_terms(analysis.content_type):
        if phrase in found:
            continue  # the prompt says it: the trigger itself is the evidence
        for i in index.triggered_by(phrase, family):
            evidence = ours.get(i)
            if evidence is None:
                evidence = ours[i] = index.evidence(i, found)
            evidence.append(Evidence("medium", phrase, MEDIUM_WEIGHT, 0, 0))


def _without_claimed(ours: dict[int, list[Evidence]]) -> dict[int, list[Evidence]]:
    """Each candidate's evidence less the words inside another candidate's longer trigger match: with
    "samurai armor" (or "samurai in lacquered armor") matched, "armor" is no evidence for the fantasy-armour
    LoRA's name, nor "dragon" for the dragon LoRA when the prompt says "dragon girl"."""
    claims = [
        (e.start, e.end, e.phrase, i)
        for i, evidence in ours.items()
        for e in evidence
        if e.field == "trigger" and e.end - e.start > 1
    ]
    if not claims:
        return ours
    out = {}
    for i, evidence in ours.items():
        own = {e.phrase for e in evidence if e.field == "trigger"}
        out[i] = [
            e
            for e in evidence
            if not any(
                j != i and phrase not in own and s <= e.start and e.end <= end and end - s > e.end - e.start
                for s, end, phrase, j in claims
            )
        ]
    return out


def _other_family_fits(
    found: dict[str, list[tuple[int, int, float]]],
    family: Family,
    index: LoraIndex,
    p: PromptWords,
    threshold: float,
    ours_named: list[set[int]],
) -> list[Judged]:
    """Other families' LoRAs named by a trigger that no LoRA of ``family`` answers to."""
    out = []
    for other in index.families():
        if other is family:
            continue
        for i in index.named(found, other):
            judged = judge(i, index.evidence(i, found), index, p, set(), threshold)
            named = [set(range(e.start, e.end)) for e in judged.evidence if e.field == "trigger"]
            if judged.refused or judged.score < threshold or not named:
                continue
            if all(any(span <= mine for mine in ours_named) for span in named):
                continue  # this family has a LoRA for the same words
            out.append(judged)
    return sorted(out, key=lambda j: -j.score)


def _looser_than_other_family(pick: Judged, others: list[Judged], index: LoraIndex) -> str:
    """Refuse a pick when another family's LoRA is named by its trigger on words the pick lacks, or by a
    trigger that contains the pick's own (``mecha musume`` names more than ``mecha``)."""
    mine = {k for e in pick.evidence for k in range(e.start, e.end)}
    own = [set(range(e.start, e.end)) for e in pick.evidence if e.field == "trigger"]
    for other in others:
        named = [e for e in other.evidence if e.field == "trigger"]
        if not named:
            continue
        spans = [set(range(e.start, e.end)) for e in named]
        wider = any(o < span for o in own for span in spans)
        uncovered = not own and other.score > pick.score and not any(span <= mine for span in spans)
        if wider or uncovered:
            record = index.records[other.index]
            what = ", ".join(dict.fromkeys(e.phrase for e in named))
            return (
                f"{index.records[pick.index].name} matches only loosely; '{what}' is what the prompt names "
                f"and only {record.name} ({family_name(record.family)}) is for it"
            )
    return ""


def _none_reason(
    family: Family, index: LoraIndex, others: list[Judged], refusals: list[str], p: PromptWords
) -> str:
    parts: list[str] = []
    if others:
        best = others[0]
        record = index.records[best.index]
        what = ", ".join(dict.fromkeys(e.phrase for e in best.evidence if e.field == "trigger"))
        parts.append(
            f"no {family_name(family)} LoRA for '{what}' "
            f"(only {record.name}, a {family_name(record.family)} LoRA, which this model cannot use)"
        )
    parts += list(dict.fromkeys(refusals))[:2]
    generic = index.generic_tags(p.tokens)
    if not parts and generic and len(generic) >= 2:
        parts.append(f"booru quality/count tags ({', '.join(generic[:4])}) are no evidence for any LoRA")
    return "; ".join(parts)


def recommend_loras(
    prompt: str,
    index: LoraIndex,
    family: Family,
    analysis: PromptAnalysis | None = None,
    *,
    exclude: Iterable[str] = (),
    limit: int = 2,
    threshold: float = DEFAULT_THRESHOLD,
    similarity: Similarity | None = None,
    semantic_weight: float = 1.0,
) -> tuple[LoraPick, ...]:
    """The picks of :func:`choose_loras` (same arguments)."""
    return choose_loras(
        prompt,
        index,
        family,
        analysis,
        exclude=exclude,
        limit=limit,
        threshold=threshold,
        similarity=similarity,
        semantic_weight=semantic_weight,
    ).picks


def insert_triggers(prompt: str, triggers: Iterable[str | None]) -> str:
    """``prompt`` with each trigger appended (``, trigger``) unless already present (case-insensitive)."""
    out = prompt
    for trigger in triggers:
        if trigger and trigger.lower() not in out.lower():
            out = f"{out}, {trigger}" if out.strip() else trigger
    return out
