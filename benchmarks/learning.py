"""Does planning get better for one user? Simulated users with hidden tastes, on plans alone.

Run: ``python benchmarks/learning.py [--users 8] [--steps 210]``. Each simulated user has, per content type
it prompts for, a preferred CFG, step count, size, sampler and at most one favourite LoRA (with a weight),
and dislikes some other LoRAs. Each interaction: a prompt from the labelled set (of the user's favourite
content types) is planned by the real :class:`Planner` with the preferences the real learner builds from
the real :class:`History` store (or with none: "no learning"); the user, some of the time, overrides what
it dislikes most (as people do: CFG, steps, size, sampler, add its LoRA, ``--no-auto`` to drop LoRAs); the
final plan is recorded with the real collector and, most of the time, rated with noise.

Regret = 5 - the user's utility of the *recommended* plan (5 = exactly its taste); "accepted" = the user
would change nothing. Both are averaged over the 10 interactions from 0/25/50/100/200 and over users.
Development users (seeds 0..) and held-out users (seeds 1000..; never looked at while tuning) are
reported separately. The fake LoRA catalog comes from ``ml_lib.diffusion.testing.records``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.learning.collector import make_record
from ml_lib.diffusion.learning.records import new_id
from ml_lib.diffusion.learning.service import History
from ml_lib.diffusion.plan import GenerationPlan, LoraUse, ModelFormat, ModelRef, ResolvedRequest
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.prompt.analysis import PromptAnalysis
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.records import lora_record

DATA = Path(__file__).parent / "data" / "intelligence_eval.jsonl"
CHECKPOINTS = (0, 25, 50, 100, 200)
WINDOW = 10
CPU = DeviceInfo("cpu", "benchmark")
MODEL = ModelRef("/models/sd15.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "sd15")
CATALOG = (
    lora_record("film_grain", Family.SD1, triggers=("film grain",), tags=(("photo", 10), ("portrait", 6))),
    lora_record("detail_eyes", Family.SD1, triggers=("detailed eyes",), tags=(("portrait", 10), ("face", 8))),
    lora_record(
        "watercolor", Family.SD1, triggers=("watercolor",), tags=(("painting", 10), ("landscape", 5))
    ),
    lora_record("anime_lines", Family.SD1, triggers=("anime lineart",), tags=(("anime", 10), ("girl", 6))),
    lora_record(
        "golden_hour", Family.SD1, triggers=("golden hour",), tags=(("landscape", 10), ("sunset", 7))
    ),
    lora_record("fur_detail", Family.SD1, triggers=("fluffy fur",), tags=(("animal", 10), ("cat", 6))),
    lora_record("food_styling", Family.SD1, triggers=("food styling",), tags=(("food", 10), ("dish", 6))),
    lora_record("archi_lines", Family.SD1, triggers=("architectural",), tags=(("architecture", 10),)),
)
TYPES = ("portrait", "landscape", "photo", "anime", "animal", "painting", "architecture", "food")
SIZES = ("512x512", "512x768", "768x512", "640x448")
SAMPLERS = ("DPM++ 2M", "Euler a", "Euler", "DDIM")


@dataclass(frozen=True, slots=True)
class Taste:
    cfg: float
    steps: int
    size: str
    sampler: str
    lora: str | None
    weight: float
    dislikes: frozenset[str]


@dataclass(frozen=True, slots=True)
class User:
    seed: int
    types: tuple[str, ...]
    tastes: dict[str, Taste]
    override_rate: float
    rate_rate: float
    noise: float

    @classmethod
    def make(cls, seed: int) -> User:
        rng = random.Random(seed)
        types = tuple(rng.sample(TYPES, 3))
        tastes = {}
        for t in types:
            lora = rng.choice([None, *[r.name for r in CATALOG]])
            dislikes = frozenset(r.name for r in CATALOG if r.name != lora and rng.random() < 0.4)
            tastes[t] = Taste(
                round(rng.uniform(3.0, 10.0) * 2) / 2, rng.choice((15, 20, 25, 30, 35, 40)),
                rng.choice(SIZES), rng.choice(SAMPLERS), lora, round(rng.uniform(0.4, 1.0), 1), dislikes,
            )  # fmt: skip
        return cls(seed, types, tastes, rng.uniform(0.3, 0.6), rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.8))


def penalties(plan: GenerationPlan, taste: Taste) -> dict[str, float]:
    """How much each aspect of ``plan`` costs this taste (in stars)."""
    used = {lo.name: lo.unet_weight for lo in plan.loras}
    out = {
        "cfg": 0.5 * abs(plan.cfg_scale - taste.cfg),
        "steps": 0.05 * abs(plan.steps - taste.steps),
        "size": 0.0 if f"{plan.width}x{plan.height}" == taste.size else 0.8,
        "sampler": 0.0 if plan.sampler == taste.sampler else 0.5,
        "dislike": 0.8 * sum(1 for n in used if n in taste.dislikes),
        "lora": 0.0,
    }
    if taste.lora is not None:
        out["lora"] = 1.2 if taste.lora not in used else min(1.2, 3 * abs(used[taste.lora] - taste.weight))
    return out


def utility(plan: GenerationPlan, taste: Taste) -> float:
    return 5.0 - sum(penalties(plan, taste).values())


_TOLERANCE = {"cfg": 0.5, "steps": 0.25, "size": 0.0, "sampler": 0.0, "dislike": 0.0, "lora": 0.3}


def accepts(plan: GenerationPlan, taste: Taste) -> bool:
    return all(v <= _TOLERANCE[k] for k, v in penalties(plan, taste).items())


def overridden(
    request: GenerationRequest, plan: GenerationPlan, taste: Taste, rng: random.Random
) -> tuple[GenerationRequest, tuple[LoraUse, ...]]:
    """What the user changes: its two worst aspects, set to its taste."""
    worst = sorted(((v, k) for k, v in penalties(plan, taste).items() if v > _TOLERANCE[k]), reverse=True)[:2]
    loras: tuple[LoraUse, ...] = ()
    for _, aspect in worst:
        if aspect == "cfg":
            request = replace(request, cfg_scale=taste.cfg)
        elif aspect == "steps":
            request = replace(request, steps=taste.steps)
        elif aspect == "size":
            w, h = map(int, taste.size.split("x"))
            request = replace(request, width=w, height=h)
        elif aspect == "sampler":
            request = replace(request, sampler=taste.sampler)
        elif aspect == "dislike":
            request = replace(request, auto=False)
        elif aspect == "lora" and taste.lora is not None:
            record = next(r for r in CATALOG if r.name == taste.lora)
            loras = (LoraUse(record.name, record.path, taste.weight, taste.weight, record.short_hash),)
    del rng
    return request, loras


def simulate(
    user: User, steps: int, learning: bool, prompts: dict[str, list[tuple[str, PromptAnalysis]]], root: Path
) -> tuple[list[float], list[bool]]:
    rng = random.Random(user.seed * 7919 + 1)  # the same prompts and noise with and without learning
    history = History(root / f"user{user.seed}-{int(learning)}.sqlite3")
    settings = Settings(home=root)
    regrets, accepted = [], []
    for i in range(steps):
        ctype = rng.choice(user.types)
        prompt, analysis = rng.choice(prompts[ctype])
        taste = user.tastes[ctype]
        seed = rng.randrange(2**31)
        prefs = history.preferences() if learning else None
        planner = Planner(settings, seed_source=lambda s=seed: s, preferences=prefs)
        request = GenerationRequest(prompt, seed=seed)
        resolved = ResolvedRequest(MODEL, candidates=CATALOG)
        recommended = planner.plan(request, resolved, analysis, CPU)
        regrets.append(5.0 - utility(recommended, taste))
        accepted.append(accepts(recommended, taste))
        final_request, final = request, recommended
        if not accepted[-1] and rng.random() < user.override_rate:
            final_request, extra = overridden(request, recommended, taste, rng)
            final = planner.plan(final_request, replace(resolved, loras=extra), analysis, CPU)
        record = make_record(new_id(), final, final_request, recommended, analysis, now=float(i))
        history.record(record)
        if rng.random() < user.rate_rate:
            stars = min(5, max(1, round(utility(final, taste) + rng.gauss(0, user.noise))))
            history.rate(record.id, stars)
    history.close()
    return regrets, accepted


def window(values: list[float] | list[bool], start: int) -> float:
    part = values[start : start + WINDOW]
    return sum(float(v) for v in part) / len(part)


def report(
    name: str, users: list[User], steps: int, prompts: dict[str, list[tuple[str, PromptAnalysis]]]
) -> None:
    results = {}
    shm = Path(
        "/dev/shm"
    )  # the store fsyncs every write: keep the benchmark's files in memory where possible
    with tempfile.TemporaryDirectory(prefix="learning-bench-", dir=shm if shm.is_dir() else None) as tmp:
        for learning in (False, True):
            results[learning] = [simulate(u, steps, learning, prompts, Path(tmp)) for u in users]
    print(f"\n{name}: {len(users)} users (seeds {users[0].seed}..{users[-1].seed})")
    print(
        f"{'after':>6} {'regret off':>11} {'regret on':>10} {'ratio':>6} {'accepted off':>13} {'accepted on':>12}"
    )
    for t in (c for c in CHECKPOINTS if c + WINDOW <= steps):
        off = statistics.mean(window(r, t) for r, _ in results[False])
        on = statistics.mean(window(r, t) for r, _ in results[True])
        acc_off = statistics.mean(window(a, t) for _, a in results[False])
        acc_on = statistics.mean(window(a, t) for _, a in results[True])
        print(f"{t:>6} {off:>11.2f} {on:>10.2f} {on / off:>6.2f} {acc_off:>13.0%} {acc_on:>12.0%}")
    worse = [
        t for t in range(10, steps - WINDOW + 1, 5)
        if statistics.mean(window(r, t) for r, _ in results[True])
        > statistics.mean(window(r, t) for r, _ in results[False])
    ]  # fmt: skip
    print(f"windows after 10 where learning is worse than none: {worse or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=8, help="users per group (development, held out)")
    parser.add_argument("--steps", type=int, default=210, help="interactions per user")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts: dict[str, list[tuple[str, PromptAnalysis]]] = {t: [] for t in TYPES}
    for row in rows:
        if row["content_type"] in prompts:
            prompts[row["content_type"]].append((row["prompt"], analyze_prompt(row["prompt"])))
    report("development users", [User.make(s) for s in range(args.users)], args.steps, prompts)
    report("held-out users", [User.make(1000 + s) for s in range(args.users)], args.steps, prompts)


if __name__ == "__main__":
    main()
