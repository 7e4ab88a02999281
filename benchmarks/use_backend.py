"""The ``use`` analyzer (the rules, overruled by USE-multilingual where they are weak) against the rules alone and
against its earlier form (USE only where the rules have no content evidence), on the tuning splits only.

Run: ``cd benchmarks && OMP_NUM_THREADS=1 python use_backend.py [--policy TRUST KEEP FRAME]``.

1. Leave-one-split-out over ``intelligence.TUNING`` (the ``test`` rows of ``intelligence_eval.jsonl`` are
   dropped on load, ``heldout10`` files are not opened): for each split the content and frame classifiers are
   fitted on the others with the build script's settings (``fit_content_model``'s defaults) and the shipped
   code path (``UseEvidenceAnalyzer``) runs with them on the left-out split. These are the honest figures: the
   classifiers never saw the prompts they read. The splits written after the rules (``heldout4`` on) are the
   fair comparison: the rules were tuned on the earlier ones until they read them almost perfectly.
2. The shipped classifiers (``vocab/use_*.json``, fitted on all the tuning splits): in-sample, so only a check
   that the files do what the folds did.
3. Cost: the encoder's cold load, and the analysis latency per prompt (warm, one thread).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np
from intelligence import TUNING, Example, coarse, files_of, load, percentile

from ml_lib.diffusion.prompt.analysis import PromptAnalysis
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.syntax import PromptDocument, parse_prompt
from ml_lib.diffusion.prompt.use_evidence import (
    LazyEncoder,
    UseEvidenceAnalyzer,
    UsePolicy,
    is_available,
    load_use_encoder,
    no_content_evidence,
)
from ml_lib.diffusion.prompt.use_model import UseReading, fit_content_model


class Memo:
    """The real encoder, each text embedded once (the folds read the same prompts)."""

    def __init__(self) -> None:
        self.encode = LazyEncoder(load_use_encoder)
        self.vectors: dict[str, Sequence[float]] = {}

    def __call__(self, text: str) -> Sequence[float]:
        if text not in self.vectors:
            vector = self.encode.encode(text)
            if vector is None:
                raise SystemExit('use_backend.py needs: pip install "ml-lib[multilingual]"')
            self.vectors[text] = vector
        return self.vectors[text]


def accuracy(rows: list[Example], results: dict[str, PromptAnalysis]) -> tuple[float, float]:
    n = len(rows) or 1
    content = sum(results[e.id].content_type == e.content_type for e in rows) / n
    aspect = sum(coarse(results[e.id].aspect.orientation) == coarse(e.aspect) for e in rows) / n
    return content, aspect


#: The splits written after the rules were built: the fair comparison between the rules and USE.
FRESH = ("heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9")


def table(name: str, examples: list[Example], results: dict[str, PromptAnalysis]) -> None:
    folds = [accuracy([e for e in examples if e.split == s], results) for s in TUNING]
    fresh = accuracy([e for e in examples if e.split in FRESH], results)
    foreign = accuracy([e for e in examples if "non_english" in e.kinds], results)
    content = " · ".join(f"{c:.1%}" for c, _ in folds)
    aspect = " · ".join(f"{a:.1%}" for _, a in folds)
    print(
        f"  {name:<24} content {content} (heldout4-9 {fresh[0]:.1%}, non-EN {foreign[0]:.1%})\n"
        f"  {'':<24} aspect  {aspect} (heldout4-9 {fresh[1]:.1%}, non-EN {foreign[1]:.1%})"
    )


def gate_form(analysis: PromptAnalysis, document: PromptDocument, reading: UseReading) -> PromptAnalysis:
    """The earlier default (rounds 9 and before): USE's content type as 2 points, only without rule evidence."""
    if not no_content_evidence(analysis):
        return analysis
    return analyze_prompt(document, extra_evidence={reading.label: 2.0})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--policy", nargs=3, type=float, metavar=("TRUST", "KEEP", "FRAME"))
    args = parser.parse_args()
    policy = UsePolicy(*args.policy) if args.policy else UsePolicy.shipped()
    examples = [e for e in load(files_of(TUNING)) if e.split in TUNING]
    memo = Memo()
    t0 = time.perf_counter()
    memo.encode.get()
    load_s = time.perf_counter() - t0
    documents = {e.id: parse_prompt(e.prompt) for e in examples}
    vectors = np.stack(
        [np.asarray(memo(documents[e.id].plain_text.strip()), dtype=np.float64) for e in examples]
    )
    rules = {e.id: analyze_prompt(documents[e.id]) for e in examples}
    print(f"{len(examples)} tuning prompts; policy {policy}")
    print("per split " + " · ".join(TUNING) + ":")
    table("rules", examples, rules)
    folded: dict[str, PromptAnalysis] = {}
    gated: dict[str, PromptAnalysis] = {}
    for held in TUNING:
        train = [i for i, e in enumerate(examples) if e.split != held]
        model = fit_content_model(vectors[train], [examples[i].content_type for i in train])
        frames = fit_content_model(vectors[train], [examples[i].aspect for i in train])
        analyzer = UseEvidenceAnalyzer(
            encoder=LazyEncoder(lambda: memo), model=model, frame_model=frames, policy=policy
        )
        for i, e in enumerate(examples):
            if e.split == held:
                folded[e.id] = analyzer.analyze(documents[e.id])
                gated[e.id] = gate_form(rules[e.id], documents[e.id], model.read(vectors[i]))
    table("gate form (left-out)", examples, gated)
    table("use (left-out folds)", examples, folded)
    shipped = UseEvidenceAnalyzer(encoder=LazyEncoder(lambda: memo), policy=policy)
    table("use (shipped, in-sample)", examples, {e.id: shipped.analyze(e.prompt) for e in examples})
    changed = [e for e in examples if folded[e.id].source == "rules+use"]
    print(f"  USE changed the content type or frame of {len(changed)} of {len(examples)} prompts (folds)")
    for e in changed[:3]:
        print(f"    e.g. {e.id}: {folded[e.id].notes[-1]}; frame cue {folded[e.id].aspect.cue!r}")

    analyzer = UseEvidenceAnalyzer(policy=policy)
    analyzer.warm_up()  # the shared encoder: its own cold load, not timed below
    t0 = time.perf_counter()
    analyzer.warm_up()
    reload_ms = (time.perf_counter() - t0) * 1e3
    wall: list[float] = []
    for _ in range(3):
        for e in examples:
            t1 = time.perf_counter()
            analyzer.analyze(e.prompt)
            wall.append((time.perf_counter() - t1) * 1e3)
    print(
        f"\nUSE encoder: cold load + first encode {load_s:.2f} s (once per process; warm_up() again "
        f"{reload_ms:.3f} ms). Analysis with the backend, warm, one thread, {len(wall)} runs: p50 "
        f"{statistics.median(wall):.2f} ms, p95 {percentile(wall, 95):.2f} ms, max {max(wall):.1f} ms"
    )


if __name__ == "__main__":
    if not is_available():
        raise SystemExit('use_backend.py needs: pip install "ml-lib[multilingual]"')
    main()
