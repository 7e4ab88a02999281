"""The learner: the history → :class:`~ml_lib.diffusion.planning.preferences.Preferences`.

Evidence, per generation, in its context (family/content/style, family/content, family):

- a rating: its stars at every value the plan used (the latest rating of a generation counts); a
  "favourite" tag without a rating counts 5, "deleted" counts 1.5 at half weight;
- an override (the user set a value we did not recommend): the used value as if rated 5 and the
  recommended one as if rated 1 (half weight); a LoRA added counts 5 *with* it, one removed 1;
- an edit (regenerated with changes): the same, for the old → new value of each changed field.

A numeric value (CFG, steps, LoRA weight) is scored by a kernel-weighted mean of nearby evidence, a
categorical one (sampler, size) by the mean at that value; both are shrunk toward a neutral 3 stars by
:data:`PRIOR_WEIGHT` pseudo-observations, and the profile default gets a small bonus, so a value replaces
the default only when the evidence says it is better. A context with too little evidence for a value
gives none, and planning backs off to the coarser context.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..catalog.families import Family, PredictionType
from ..planning.loras import DEFAULT_LORA_WEIGHT
from ..planning.preferences import ContextPreferences, Learned, LoraPreference, Preferences
from ..planning.profiles import profile_for
from .records import Feedback, FeedbackKind, GenerationRecord

__all__ = ["EXPLORE", "MIN_EVIDENCE", "PRIOR_WEIGHT", "learn"]

PRIOR_WEIGHT = 1.5  # pseudo-observations at 3 stars every score is shrunk toward
DEFAULT_BONUS = 0.3  # how much better than the default a value must look (in stars)
MIN_EVIDENCE = 2.0  # evidence (weighted observations near a value) a context needs to state it
EXPLORE = 0.15  # share of plans that try one neighbouring value, once a context has MIN_CONTEXT plans
MIN_CONTEXT = 3
_MOD, _REJECT = 1.0, 0.5  # weights of an override's chosen and rejected values
_BANDWIDTH = {"cfg_scale": 0.6, "steps": 3.0, "lora": 0.12}
_FAVOURITE = {"favourite", "favorite", "fav"}
_LABEL = {"cfg_scale": "CFG", "steps": "steps", "sampler": "the sampler", "size": "the size"}

Value = str | int | float


@dataclass(slots=True)
class _Evidence:
    """Observations (value, stars, weight) per field, and override directions, for one context key."""

    count: int = 0
    obs: dict[str, list[tuple[Value | None, float, float]]] = field(default_factory=lambda: defaultdict(list))
    mods: dict[str, list[tuple[Value | None, Value | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    rated: list[tuple[frozenset[str], float]] = field(default_factory=list)  # LoRAs used, stars


def _stars(record_id: str, events: Sequence[Feedback]) -> tuple[float, float] | None:
    """(stars, weight) of a generation from its feedback; None when it has none that counts."""
    ratings = [e for e in events if e.kind is FeedbackKind.RATING and e.stars is not None]
    if ratings:
        return float(ratings[-1].stars or 0), 1.0
    if any(e.kind is FeedbackKind.TAGS and _FAVOURITE & {t.lower() for t in e.tags} for e in events):
        return 5.0, 1.0
    if any(e.kind is FeedbackKind.DELETED for e in events):
        return 1.5, 0.5
    del record_id
    return None


def _collect(records: Iterable[GenerationRecord], feedback: Iterable[Feedback]) -> dict[str, _Evidence]:
    by_gen: dict[str, list[Feedback]] = defaultdict(list)
    for event in feedback:
        by_gen[event.generation_id].append(event)
    out: dict[str, _Evidence] = defaultdict(_Evidence)
    records = list(records)
    said = {(r.id, o.field, o.recommended, o.used) for r in records for o in r.overrides}
    for record in records:
        keys = record.context.chain()
        rating = _stars(record.id, by_gen.get(record.id, ()))
        changes = [(o.field, o.recommended, o.used) for o in record.overrides]
        for e in by_gen.get(record.id, ()):
            if e.kind is FeedbackKind.EDIT:  # what the new generation's overrides say already counts once
                changes += [
                    (c.field, c.recommended, c.used)
                    for c in e.changes
                    if (e.other_id, c.field, c.recommended, c.used) not in said
                ]
        for key in keys:
            ev = out[key]
            ev.count += 1
            if rating is not None:
                stars, weight = rating
                for name, value in record.values:
                    ev.obs[name].append((value, stars, weight))
                used = frozenset(k[5:] for k, _ in record.values if k.startswith("lora:"))
                ev.rated.append((used, stars))
            for name, old, new in changes:
                ev.mods[name].append((old, new))
                if new is not None:
                    ev.obs[name].append((new, 5.0, _MOD))
                if old is not None:  # a LoRA removed: evidence against using it at all
                    ev.obs[name].append((old, 1.0, _MOD if new is None else _REJECT))
    return out


def _score(
    value: Value, obs: Sequence[tuple[Value | None, float, float]], bandwidth: float | None
) -> tuple[float, float]:
    """(shrunk mean stars, evidence) at ``value``: kernel-weighted for numbers, exact for categories."""
    total = weight = 0.0
    for x, stars, w in obs:
        if x is None:
            continue
        if bandwidth is None:
            k = 1.0 if x == value else 0.0
        else:
            k = math.exp(-0.5 * ((float(x) - float(value)) / bandwidth) ** 2)
        total += k * w * stars
        weight += k * w
    return (total + PRIOR_WEIGHT * 3.0) / (weight + PRIOR_WEIGHT), weight


def _best(
    default: Value, obs: Sequence[tuple[Value | None, float, float]], bandwidth: float | None
) -> tuple[Value, float, float, float] | None:
    """(value, its score, its evidence, the default's score) when a non-default value wins, else None."""
    base, _ = _score(default, obs, bandwidth)
    base += DEFAULT_BONUS
    best: tuple[Value, float, float, float] | None = None
    for value in sorted({x for x, _, _ in obs if x is not None and x != default}, key=str):
        score, evidence = _score(value, obs, bandwidth)
        if evidence >= MIN_EVIDENCE and score > base and (best is None or score > best[1]):
            best = (value, score, evidence, base - DEFAULT_BONUS)
    return best


def _defaults(family: str) -> dict[str, Value]:
    try:
        profile = profile_for(Family(family), PredictionType.EPSILON)
    except (ValueError, KeyError):
        return {}
    return {
        "cfg_scale": profile.cfg_scale,
        "steps": profile.steps,
        "sampler": profile.sampler,
        "size": f"{profile.width}x{profile.height}",
    }


def _reason(name: str, value: Value, ev: _Evidence, key: str, score: float, base: float) -> str:
    label = _LABEL.get(name, name)
    what = key.split("/", 1)[1].replace("/", ", ") + " prompts" if "/" in key else f"{key} plans"
    mods = ev.mods.get(name, [])[-20:]
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    pairs = [
        (float(a), float(b)) for a, b in mods if isinstance(a, (int, float)) and isinstance(b, (int, float))
    ]
    if pairs and len(pairs) == len(mods):
        lowered = sum(1 for a, b in pairs if b < a)
        raised = sum(1 for a, b in pairs if b > a)
        verb, n = ("lowered", lowered) if lowered >= raised else ("raised", raised)
        if n:
            return f"{label} {shown}: you {verb} {label} on {n} of your last {min(ev.count, 20)} {what}"
    chosen = sum(1 for _, b in mods if b == value)
    if chosen:
        return f"{label} {shown}: you chose it on {chosen} of your last {min(ev.count, 20)} {what}"
    return f"{label} {shown}: rated {score:.1f} stars near it against {base:.1f} at the default ({what})"


def _values(ev: _Evidence, key: str, defaults: dict[str, Value]) -> tuple[Learned, ...]:
    out = []
    for name in ("cfg_scale", "steps", "sampler", "size"):
        if name not in defaults or not ev.obs.get(name):
            continue
        found = _best(defaults[name], ev.obs[name], _BANDWIDTH.get(name))
        if found is None:
            continue
        value, score, evidence, base = found
        value = round(float(value)) if name == "steps" else value
        out.append(Learned(name, value, round(evidence, 2), _reason(name, value, ev, key, score, base)))
    return tuple(out)


def _loras(ev: _Evidence, key: str) -> tuple[LoraPreference, ...]:
    out = []
    for name in sorted(k[5:] for k in ev.obs if k.startswith("lora:")):
        obs = ev.obs[f"lora:{name}"]
        with_ = [(s, w) for _, s, w in obs]
        without = [(s, 1.0) for used, s in ev.rated if name not in used]
        m_with = (sum(s * w for s, w in with_) + PRIOR_WEIGHT * 3) / (sum(w for _, w in with_) + PRIOR_WEIGHT)
        m_without = (sum(s for s, _ in without) + PRIOR_WEIGHT * 3) / (len(without) + PRIOR_WEIGHT)
        mods = ev.mods.get(f"lora:{name}", [])
        added = sum(1 for old, new in mods if old is None and new is not None)
        removed = sum(1 for old, new in mods if old is not None and new is None)
        evidence = round(sum(w for _, w in with_), 2)
        weights = [(x, s, w) for x, s, w in obs if x is not None]
        recommended = next((float(o) for o, _ in mods if o is not None), DEFAULT_LORA_WEIGHT)
        best = _best(recommended, weights, _BANDWIDTH["lora"])
        weight = float(best[0]) if best is not None else None
        diff = m_with - m_without
        where = key.split("/", 1)[1].replace("/", ", ") if "/" in key else key
        if removed and diff < -0.5:
            why = f"LoRA {name} left out: you removed it {removed} time(s) in {where} ({diff:+.1f} stars with it)"
            out.append(LoraPreference(name, "drop", None, evidence, why))
        elif added and diff > 0.5:
            weight = (
                weight if weight is not None else float(next(n for o, n in reversed(mods) if n is not None))
            )
            why = f"LoRA {name} at {weight:g}: you added it {added} time(s) in {where} ({diff:+.1f} stars with it)"
            out.append(LoraPreference(name, "add", weight, evidence, why))
        elif weight is not None:
            why = f"LoRA {name} at {weight:g}: rated best near that weight in {where}"
            out.append(LoraPreference(name, "weight", weight, evidence, why))
    return tuple(out)


def learn(
    records: Iterable[GenerationRecord], feedback: Iterable[Feedback], *, explore: float = EXPLORE
) -> Preferences:
    """Preferences per context from the history (records and their feedback); empty history → empty."""
    contexts = []
    for key, ev in sorted(_collect(records, feedback).items()):
        values = _values(ev, key, _defaults(key.split("/", 1)[0]))
        loras = _loras(ev, key)
        if values or loras or ev.count >= MIN_CONTEXT:
            contexts.append(ContextPreferences(key, ev.count, values, loras))
    return Preferences(tuple(contexts), explore if contexts else 0.0)
