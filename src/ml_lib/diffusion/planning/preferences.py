"""Learned preferences as planning sees them: pure data the facade builds from the history (``learning/``).

The planner takes them as a constructor argument (``Planner(settings, preferences=...)``) and keeps its
four-argument ``plan``. For a plan's :class:`LearningContext` (family, content type, style) the finest
context with a value wins (:meth:`Preferences.at`); a learned value replaces a profile or analysis default
(never a user's value, a distilled model's settings or a size the prompt asked for) and is recorded as a
``learned`` decision with the learner's reason. Exploration is bounded and seeded by the plan's seed:
with probability ``explore`` one parameter moves one step from its learned value.
With no preferences (an empty history) nothing changes: cold start is today's planner exactly.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..plan import LoraUse, Source
from ..prompt.analysis import PromptAnalysis
from .loras import LoraIndex, LoraPick, lora_weight
from .parameters import ParameterDefaults

__all__ = ["STEPS", "ContextPreferences", "Learned", "LearningContext", "LoraPreference", "Preferences"]


@dataclass(frozen=True, slots=True)
class LearningContext:
    """Where a preference applies: model family, content type and the first style cue ("" when none)."""

    family: str
    content_type: str
    style: str = ""

    @classmethod
    def of(cls, family: str, analysis: PromptAnalysis | None) -> LearningContext:
        """The context of a prompt's analysis on a model family."""
        if analysis is None:
            return cls(family, "unknown")
        styles = analysis.style_labels
        return cls(family, analysis.content_type, styles[0] if styles else "")

    def chain(self) -> tuple[str, ...]:
        """Context keys from the finest to the coarsest: family/content/style, family/content, family."""
        fine = f"{self.family}/{self.content_type}"
        return ((f"{fine}/{self.style}",) if self.style else ()) + (fine, self.family)


@dataclass(frozen=True, slots=True)
class Learned:
    """A learned value of ``field`` (``cfg_scale``, ``steps``, ``sampler``, ``size`` as "WxH")."""

    field: str
    value: str | int | float
    evidence: float
    reason: str


@dataclass(frozen=True, slots=True)
class LoraPreference:
    """What was learned about one LoRA in a context: ``add`` it, ``drop`` it, or use ``weight``."""

    name: str
    action: str  # "add" | "drop" | "weight"
    weight: float | None
    evidence: float
    reason: str


@dataclass(frozen=True, slots=True)
class ContextPreferences:
    """Everything learned for one context key, and from how many generations."""

    key: str
    count: int = 0
    values: tuple[Learned, ...] = ()
    loras: tuple[LoraPreference, ...] = ()

    def value(self, name: str) -> Learned | None:
        """The learned value of ``name``, if any."""
        return next((v for v in self.values if v.field == name), None)

    def lora(self, name: str) -> LoraPreference | None:
        """What was learned about the LoRA ``name``, if anything."""
        return next((p for p in self.loras if p.name == name), None)


#: Exploration steps and bounds per numeric field: (step, low, high).
STEPS: dict[str, tuple[float, float, float]] = {"cfg_scale": (0.5, 1.5, 12.0), "steps": (4, 4, 60)}


@dataclass(frozen=True, slots=True)
class Preferences:
    """Learned preferences per context key (finest wins) and the exploration rate."""

    contexts: tuple[ContextPreferences, ...] = ()
    explore: float = 0.0

    def at(self, context: LearningContext) -> ContextPreferences:
        """Merged preferences for ``context``: per field and LoRA, the finest key that has one."""
        by_key = {c.key: c for c in self.contexts}
        chain = [by_key[k] for k in context.chain() if k in by_key]
        values: dict[str, Learned] = {}
        loras: dict[str, LoraPreference] = {}
        for prefs in chain:
            for v in prefs.values:
                values.setdefault(v.field, v)
            for p in prefs.loras:
                loras.setdefault(p.name, p)
        count = chain[0].count if chain else 0
        return ContextPreferences(context.chain()[0], count, tuple(values.values()), tuple(loras.values()))

    def adjust(
        self,
        p: ParameterDefaults,
        context: LearningContext,
        analysis: PromptAnalysis | None,
        seed: int,
    ) -> ParameterDefaults:
        """``p`` with learned values (and at most one exploration step) in place of automatic defaults."""
        prefs = self.at(context)
        if not (prefs.values or prefs.loras or prefs.count):
            return p  # cold start: nothing learned, nothing explored
        speed = Source.CATALOG in (p.steps_source, p.cfg_source, p.sampler_source)
        asked = analysis is not None and analysis.aspect.source in ("ratio", "cue")
        changes: dict[str, object] = {}
        for learned in prefs.values:
            why = f"{learned.reason} [{prefs.key}]"
            if learned.field == "cfg_scale" and not speed:
                changes.update(cfg_scale=float(learned.value), cfg_source=Source.LEARNED, cfg_reason=why)
            elif learned.field == "steps" and not speed:
                changes.update(steps=int(learned.value), steps_source=Source.LEARNED, steps_reason=why)
            elif learned.field == "sampler" and not speed and learned.value != p.sampler:
                changes.update(
                    sampler=str(learned.value),
                    schedule=None,
                    sampler_source=Source.LEARNED,
                    sampler_reason=why,
                )
            elif learned.field == "size" and not asked:
                w, _, h = str(learned.value).partition("x")
                changes.update(width=int(w), height=int(h), size_source=Source.LEARNED, size_reason=why)
        out = dataclasses.replace(p, **changes)  # type: ignore[arg-type]
        return out if speed else _explore(out, self.explore, random.Random(f"{seed}:{context.chain()[0]}"))

    def adjust_loras(
        self,
        picks: tuple[LoraPick, ...],
        context: LearningContext,
        index: LoraIndex | None,
        family: object,
        exclude: Sequence[str],
        limit: int,
    ) -> tuple[LoraPick, ...]:
        """Recommended LoRAs with learned weights; ones the user keeps removing dropped, favourites added."""
        prefs = self.at(context)
        if not prefs.loras:
            return picks
        out: list[LoraPick] = []
        for pick in picks:
            pref = prefs.lora(pick.use.name)
            if pref is None:
                out.append(pick)
            elif pref.action != "drop":
                out.append(_reweighted(pick, pref, prefs.key))
        skip = {e.lower() for e in exclude} | {p.use.name.lower() for p in out}
        dropped = {p.use.name for p in picks} - {p.use.name for p in out}
        records = {r.name: r for r in (index.records if index is not None else ()) if r.family == family}
        for pref in sorted(prefs.loras, key=lambda q: (-q.evidence, q.name)):
            record = records.get(pref.name)
            if len(out) >= limit or pref.action != "add" or record is None or pref.name in dropped:
                continue
            if pref.name.lower() in skip or record.path.lower() in skip:
                continue
            weight = pref.weight if pref.weight is not None else lora_weight(record)[0]
            use = LoraUse(record.name, record.path, weight, weight, record.short_hash)
            trigger = record.trigger_words[0].split(",")[0].strip() or None if record.trigger_words else None
            note = f"{pref.reason} [{prefs.key}]"
            out.append(LoraPick(record, use, trigger, 0.0, 0.0, ("learned",), note=note))
        return tuple(out)


def _reweighted(pick: LoraPick, pref: LoraPreference, key: str) -> LoraPick:
    if pref.weight is None or pref.weight == pick.use.unet_weight:
        return pick
    use = dataclasses.replace(pick.use, unet_weight=pref.weight, te_weight=pref.weight)
    return dataclasses.replace(pick, use=use, note=f"{pref.reason} [{key}]")


def _explore(p: ParameterDefaults, rate: float, rng: random.Random) -> ParameterDefaults:
    """With probability ``rate``, one of CFG / steps one step up or down (within bounds)."""
    if rate <= 0 or rng.random() >= rate:
        return p
    name = rng.choice(sorted(STEPS))
    step, low, high = STEPS[name]
    current = p.cfg_scale if name == "cfg_scale" else p.steps
    value = min(high, max(low, current + rng.choice((-step, step))))
    if value == current:
        return p
    why = f"exploring: {value:g} instead of {current:g} (about 1 plan in {round(1 / rate)} tries a neighbour)"
    if name == "cfg_scale":
        return dataclasses.replace(p, cfg_scale=float(value), cfg_source=Source.LEARNED, cfg_reason=why)
    return dataclasses.replace(p, steps=int(value), steps_source=Source.LEARNED, steps_reason=why)
