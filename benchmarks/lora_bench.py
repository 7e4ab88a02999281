"""LoRA recommendation quality and latency (used by ``intelligence.py``; runnable alone).

Precision@3 / recall@3 of :func:`recommend_loras` on ``data/lora_eval.jsonl`` against the fixture
library ``data/lora_library.jsonl`` (both from ``lora_fixture.py``), next to a keyword-trigger baseline
(every LoRA whose trigger word appears in the prompt, any family); family-incompatible picks; and the
recommendation latency p95 over 10,000 generated LoRA records (index built once, outside the timing).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from lora_fixture import EVAL, LIBRARY, big_library, record_of

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import ModelRecord
from ml_lib.diffusion.planning.loras import LoraIndex, Similarity, recommend_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt

K = 3
Recommender = Callable[[str, Family], list[ModelRecord]]


@dataclass(frozen=True, slots=True)
class LoraScore:
    precision: float
    recall: float
    incompatible: int
    picked: int


def _load(path) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(recommend: Recommender, rows: list[dict[str, object]]) -> LoraScore:
    right = picked = expected = incompatible = 0
    for row in rows:
        family = Family(row["family"])
        got = recommend(str(row["prompt"]), family)[:K]
        want = set(row["picks"])  # type: ignore[arg-type]
        right += sum(r.name in want for r in got)
        picked += len(got)
        expected += len(want)
        incompatible += sum(r.family is not family for r in got)
    return LoraScore(right / (picked or 1), right / (expected or 1), incompatible, picked)


def ours(index: LoraIndex, similarity: Similarity | None = None) -> Recommender:
    def recommend(prompt: str, family: Family) -> list[ModelRecord]:
        picks = recommend_loras(prompt, index, family, analyze_prompt(prompt), limit=K, similarity=similarity)
        return [p.record for p in picks]

    return recommend


def keyword_baseline(records: list[ModelRecord]) -> Recommender:
    def recommend(prompt: str, family: Family) -> list[ModelRecord]:
        low = prompt.lower()
        del family  # the naive baseline does not look at families
        return sorted(
            (r for r in records if any(t.lower() in low for t in r.trigger_words)), key=lambda r: r.name
        )

    return recommend


@dataclass(frozen=True, slots=True)
class Latency:
    build_s: float
    wall_p50_ms: float
    wall_p95_ms: float
    cpu_p95_ms: float


def latency(n: int = 10_000, repeat: int = 5) -> Latency:
    """Index build time, then wall p50/p95 and CPU p95 of one recommendation over ``n`` LoRAs."""
    records = big_library(n)
    t0 = time.perf_counter()
    index = LoraIndex(records)
    build = time.perf_counter() - t0
    rows = _load(EVAL)
    analyses = {str(r["prompt"]): analyze_prompt(str(r["prompt"])) for r in rows}
    wall, cpu = [], []
    for _ in range(repeat):
        for row in rows:
            prompt = str(row["prompt"])
            t, c = time.perf_counter(), time.process_time()
            recommend_loras(prompt, index, Family(row["family"]), analyses[prompt], limit=K)
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - t)
    q = statistics.quantiles(wall, n=100, method="inclusive")
    qc = statistics.quantiles(cpu, n=100, method="inclusive")
    return Latency(build, q[49] * 1e3, q[94] * 1e3, qc[94] * 1e3)


def report(semantic: bool = True) -> None:
    library = [record_of(r) for r in _load(LIBRARY)]
    rows = _load(EVAL)
    families = sorted({r.family.value for r in library})
    print(f"\nLoRA recommendation: {len(library)} fixture LoRAs ({', '.join(families)}), {len(rows)} prompts")
    systems = [("bm25 (ours)", ours(LoraIndex(library))), ("keyword-trigger", keyword_baseline(library))]
    from ml_lib.diffusion.prompt import semantic as sem

    if semantic and sem.is_available():
        systems.insert(1, ("bm25 + semantic", ours(LoraIndex(library), sem.similarities)))
    for name, recommend in systems:
        s = evaluate(recommend, rows)
        print(
            f"  {name:<16} precision@{K} {s.precision:6.1%}   recall@{K} {s.recall:6.1%}   "
            f"family-incompatible picks {s.incompatible} (of {s.picked})"
        )
    lat = latency()
    print(
        f"  latency over 10,000 LoRAs: wall p50 {lat.wall_p50_ms:.2f} ms, p95 {lat.wall_p95_ms:.2f} ms, "
        f"CPU p95 {lat.cpu_p95_ms:.2f} ms (target <= 20 ms); index build {lat.build_s:.2f} s"
    )


if __name__ == "__main__":
    report()
