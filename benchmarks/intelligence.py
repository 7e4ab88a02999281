"""Prompt-analysis quality on the labelled set in ``benchmarks/data/intelligence_eval.jsonl``.

Run: ``python benchmarks/intelligence.py [--repeat 20] [--no-semantic] [--errors dev] [--dev-only]``. Prints,
for the dev split (the rules and vocabularies were tuned looking at it), the first held-out ``test`` split,
the ``heldout`` … ``heldout9`` splits of ``intelligence_heldout*.jsonl`` (each written before a round, looked at,
then tuned on: dev data now), the ``train8`` and ``train9`` tuning sets written for the USE classifiers, and
the ``heldout10`` split of ``intelligence_heldout10.jsonl`` (written blind to the code before round 12's tuning;
``--dev-only`` does not even read its file, and a run without it skips it while it does not exist yet):
content-type accuracy, aspect accuracy (portrait / landscape / square, and the five orientations), per-class
accuracy with the confusion of the worst classes, and style-cue recall, for the
rules alone and, when the ``semantic`` extra is installed, rules + sentence embeddings; then per-kind
accuracy and the analysis latency (p50/p95 wall and CPU time per prompt). See
``benchmarks/data/README.md`` for the labelling rules.

Then LoRA recommendation (``lora_bench.py``): precision@3 / recall@3 against a keyword-trigger baseline,
family-incompatible picks (must be 0) and the latency p95 over 10,000 generated LoRAs (``--no-lora`` skips).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ml_lib.diffusion.prompt.analysis import PromptAnalysis
from ml_lib.diffusion.prompt.analyzer import analyze_prompt

DATA = Path(__file__).parent / "data" / "intelligence_eval.jsonl"
HELDOUT = DATA.with_name("intelligence_heldout.jsonl")
HELDOUT2 = DATA.with_name("intelligence_heldout2.jsonl")
HELDOUT3 = DATA.with_name("intelligence_heldout3.jsonl")
HELDOUT4 = DATA.with_name("intelligence_heldout4.jsonl")
HELDOUT5 = DATA.with_name("intelligence_heldout5.jsonl")
HELDOUT6 = DATA.with_name("intelligence_heldout6.jsonl")
HELDOUT7 = DATA.with_name("intelligence_heldout7.jsonl")
TRAIN8 = DATA.with_name("intelligence_train8.jsonl")
HELDOUT8 = DATA.with_name("intelligence_heldout8.jsonl")
TRAIN9 = DATA.with_name("intelligence_train9.jsonl")
HELDOUT9 = DATA.with_name("intelligence_heldout9.jsonl")
HELDOUT10 = DATA.with_name("intelligence_heldout10.jsonl")
#: Which file holds which splits: a run reads only the files of the splits it asks for.
FILES = {DATA: ("dev", "test"), HELDOUT: ("heldout",), HELDOUT2: ("heldout2",), HELDOUT3: ("heldout3",)}
FILES[HELDOUT4] = ("heldout4",)
FILES[HELDOUT5] = ("heldout5",)
FILES[HELDOUT6] = ("heldout6",)
FILES[HELDOUT7] = ("heldout7",)
FILES[TRAIN8] = ("train8",)
FILES[HELDOUT8] = ("heldout8",)
FILES[TRAIN9] = ("train9",)
FILES[HELDOUT9] = ("heldout9",)
FILES[HELDOUT10] = ("heldout10",)
#: What the rules and classifiers may be tuned on: ``dev``, the earlier held-out splits (looked at) and train8.
TUNING = (
    "dev", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8",
    "heldout9", "train8", "train9",
)  # fmt: skip
SPLITS = (TUNING[0], "test", *TUNING[1:], "heldout10")
#: The issue's three frames: tall counts as portrait, wide as landscape.
COARSE = {"tall": "portrait", "wide": "landscape"}


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    split: str
    prompt: str
    content_type: str
    aspect: str
    styles: tuple[str, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Score:
    n: int
    content: float
    aspect: float  # portrait / landscape / square
    style_recall: float
    aspect_exact: float  # the five orientations


def coarse(orientation: str) -> str:
    return COARSE.get(orientation, orientation)


def files_of(splits: tuple[str, ...]) -> tuple[Path, ...]:
    """The labelled files holding any of ``splits`` (the others are not read; a missing file is skipped: the
    newest held-out split may not be written yet)."""
    return tuple(path for path, held in FILES.items() if set(held) & set(splits) and path.is_file())


def load(paths: tuple[Path, ...] = tuple(FILES)) -> list[Example]:
    rows = [
        json.loads(line)
        for path in paths
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [
        Example(
            r["id"],
            r["split"],
            r["prompt"],
            r["content_type"],
            r["aspect"],
            tuple(r["styles"]),
            tuple(r["kinds"]),
        )
        for r in rows
    ]


def score(examples: list[Example], results: dict[str, PromptAnalysis]) -> Score:
    content = sum(results[e.id].content_type == e.content_type for e in examples)
    aspect = sum(coarse(results[e.id].aspect.orientation) == coarse(e.aspect) for e in examples)
    exact = sum(results[e.id].aspect.orientation == e.aspect for e in examples)
    expected = [(e, s) for e in examples for s in e.styles]
    found = sum(s in results[e.id].style_labels for e, s in expected)
    n = len(examples) or 1
    return Score(len(examples), content / n, aspect / n, found / (len(expected) or 1), exact / n)


def run(examples: list[Example], analyze: Callable[[str], PromptAnalysis]) -> dict[str, PromptAnalysis]:
    return {e.id: analyze(e.prompt) for e in examples}


def latency(examples: list[Example], repeat: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for e in examples:
        analyze_prompt(e.prompt)  # vocabularies loaded once per process, outside the measurement
    for _ in range(repeat):
        for e in examples:
            w0, c0 = time.perf_counter(), time.process_time()
            analyze_prompt(e.prompt)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    return wall, cpu


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(
    name: str, examples: list[Example], results: dict[str, PromptAnalysis], splits: tuple[str, ...]
) -> None:
    for split in splits:
        part = [e for e in examples if e.split == split]
        s = score(part, results)
        recall = f"   style-cue recall {s.style_recall:6.1%}" if any(e.styles for e in part) else ""
        print(
            f"{name:<16} {split:<7} n={s.n:<4} content-type {s.content:6.1%}   aspect {s.aspect:6.1%}"
            f" (5 orientations {s.aspect_exact:6.1%}){recall}"
        )


def per_class(examples: list[Example], results: dict[str, PromptAnalysis], split: str) -> None:
    """Accuracy per content type and per aspect, and the confusion of the two worst content types."""
    part = [e for e in examples if e.split == split]
    for field, want_of, got_of in (
        ("content type", lambda e: e.content_type, lambda a: a.content_type),
        ("aspect", lambda e: coarse(e.aspect), lambda a: coarse(a.aspect.orientation)),
    ):
        classes = sorted({want_of(e) for e in part})
        rates = []
        cells = []
        for label in classes:
            mine = [e for e in part if want_of(e) == label]
            ok = sum(got_of(results[e.id]) == label for e in mine)
            rates.append((ok / len(mine), label, mine))
            cells.append(f"{label} {ok}/{len(mine)}")
        print(f"  {field} per class ({split}): " + ", ".join(cells))
        for rate, label, mine in sorted(rates, key=lambda x: x[0])[:2]:
            if rate == 1.0:
                continue
            confused: dict[str, int] = {}
            for e in mine:
                got = got_of(results[e.id])
                if got != label:
                    confused[got] = confused.get(got, 0) + 1
            print(f"    {label}: taken for " + ", ".join(f"{k} x{v}" for k, v in sorted(confused.items())))


def use_report(examples: list[Example], splits: tuple[str, ...]) -> None:
    """The ``use`` analyzer (``ML_DIFFUSION_ANALYZER=use``, the shipped classifier) on every split read."""
    from ml_lib.diffusion.prompt.use_evidence import UseEvidenceAnalyzer, is_available

    if not is_available():
        print('rules+use        not measured: pip install "ml-lib[multilingual]"')
        return
    analyzer = UseEvidenceAnalyzer()
    t0 = time.perf_counter()
    analyzer.warm_up()
    load_s = time.perf_counter() - t0
    results = run(examples, analyzer.analyze)
    report("rules+use", examples, results, splits)
    changed = sum(results[e.id].source == "rules+use" for e in examples)
    print(
        f"{'':16} (encoder load {load_s:.1f} s once per process; USE read every prompt and changed the content "
        f"type or frame of {changed} of {len(examples)}; its classifiers were fitted on the tuning splits)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20, help="latency passes over the whole set")
    parser.add_argument("--no-semantic", action="store_true", help="skip rules + embeddings")
    parser.add_argument("--no-use", action="store_true", help="skip rules + USE-multilingual evidence")
    parser.add_argument("--errors", choices=SPLITS, help="list the misclassified prompts of a split")
    parser.add_argument("--no-lora", action="store_true", help="skip the LoRA recommendation benchmark")
    parser.add_argument(
        "--no-lora-timing", action="store_true", help="LoRA quality only, without the plan latency runs"
    )
    parser.add_argument(
        "--dev-only",
        action="store_true",
        help="while tuning: only the tuning splits; test and heldout10 stay unread",
    )
    args = parser.parse_args()

    splits = TUNING if args.dev_only else SPLITS
    paths = files_of(splits)
    examples = [e for e in load(paths) if e.split in splits]
    print(
        f"{len(examples)} labelled prompts ({', '.join(p.name for p in paths)}); "
        "dev, heldout … heldout9, train8 and train9 = tuning splits, test = the first held-out split, "
        "heldout10 = written blind before round 12's tuning\n"
    )
    rules = run(examples, analyze_prompt)
    report("rules", examples, rules, splits)
    semantic: dict[str, PromptAnalysis] | None = None
    if not args.no_semantic:
        from ml_lib.diffusion.prompt import semantic as semantic_module

        if semantic_module.is_available():
            analyzer = semantic_module.SemanticAnalyzer()
            t0 = time.perf_counter()
            analyzer.warm_up()
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            analyses = analyzer.analyze_many([e.prompt for e in examples])
            per_prompt = (time.perf_counter() - t0) / len(examples)
            one = []
            for e in examples[:40]:
                t1 = time.perf_counter()
                analyzer.analyze(e.prompt)
                one.append(time.perf_counter() - t1)
            semantic = {e.id: a for e, a in zip(examples, analyses, strict=True)}
            report("rules+semantic", examples, semantic, splits)
            print(
                f"{'':16} (model load {load_s:.1f} s once per process; batched {per_prompt * 1000:.1f} ms per "
                f"prompt; one prompt at a time p50 {statistics.median(one) * 1000:.1f} ms, "
                f"p95 {percentile(one, 95) * 1000:.1f} ms)"
            )
        else:
            print('rules+semantic   not measured: pip install "ml-lib[semantic]"')

    if not args.no_use:
        use_report(examples, splits)

    for split in splits:
        print()
        per_class(examples, rules, split)
    last = splits[-1]
    print(f"\nper kind, {last} split (rules):")
    kinds = sorted({k for e in examples for k in e.kinds})
    for kind in kinds:
        part = [e for e in examples if e.split == last and kind in e.kinds]
        if part:
            s = score(part, rules)
            print(f"  {kind:<12} n={s.n:<4} content-type {s.content:6.1%}   aspect {s.aspect:6.1%}")

    wall, cpu = latency(examples, args.repeat)
    print(
        f"\nanalysis latency (rules), {len(wall)} runs: wall p50 {percentile(wall, 50) * 1e3:.3f} ms, "
        f"p95 {percentile(wall, 95) * 1e3:.3f} ms; CPU p50 {percentile(cpu, 50) * 1e3:.3f} ms, "
        f"p95 {percentile(cpu, 95) * 1e3:.3f} ms"
    )

    if not args.no_lora:
        from lora_bench import TUNING as LORA_TUNING
        from lora_bench import report as lora_report

        lora_report(
            semantic=not args.no_semantic,
            splits=LORA_TUNING if args.dev_only else (*LORA_TUNING, "heldout10"),
            timing=not args.no_lora_timing,
        )

    if args.errors:
        print(f"\nmisclassified ({args.errors}):")
        for e in examples:
            if e.split != args.errors:
                continue
            a = rules[e.id]
            if a.content_type != e.content_type or coarse(a.aspect.orientation) != coarse(e.aspect):
                print(
                    f"  {e.id} want {e.content_type}/{e.aspect} got {a.content_type}/{a.aspect.orientation}"
                    f" ({a.aspect.source}: {a.aspect.cue}): {e.prompt[:90]}"
                )


if __name__ == "__main__":
    main()
