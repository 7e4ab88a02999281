"""The ``use`` analyzer (rules + USE-multilingual where they have no content evidence) against the rules alone,
on the tuning splits only.

Run: ``cd benchmarks && OMP_NUM_THREADS=1 python use_backend.py`` (needs ``pip install "ml-lib[multilingual]"``).

1. Leave-one-split-out over ``dev`` and ``heldout`` … ``heldout6`` (``intelligence.TUNING``; the
   ``test`` rows of ``intelligence_eval.jsonl`` are dropped on load, ``heldout7`` files are not opened): for each
   split the classifier is fitted on the others with the build script's settings
   (``fit_content_model``'s defaults) and the shipped code path (``UseEvidenceAnalyzer``) runs with it on the
   left-out split. These are the honest figures: the classifier never saw the prompts it reads.
2. The shipped classifier (``vocab/use_content.json``, fitted on all the tuning splits): in-sample, so only a check
   that the file does what the folds did.
3. Cost: the encoder's cold load, and the analysis latency per prompt (warm, one thread) with the backend on,
   over all prompts and over those where the gate fires.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
from intelligence import TUNING, Example, coarse, files_of, load, percentile

from ml_lib.diffusion.prompt.analysis import PromptAnalysis
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.syntax import parse_prompt
from ml_lib.diffusion.prompt.use_evidence import (
    LazyEncoder,
    UseEvidenceAnalyzer,
    is_available,
    load_use_encoder,
    no_content_evidence,
)
from ml_lib.diffusion.prompt.use_model import fit_content_model


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


def table(name: str, examples: list[Example], results: dict[str, PromptAnalysis]) -> None:
    folds = [accuracy([e for e in examples if e.split == s], results) for s in TUNING]
    foreign = accuracy([e for e in examples if "non_english" in e.kinds], results)
    content = " · ".join(f"{c:.1%}" for c, _ in folds)
    aspect = " · ".join(f"{a:.1%}" for _, a in folds)
    print(
        f"  {name:<22} content {content} (mean {np.mean([c for c, _ in folds]):.1%}, non-EN {foreign[0]:.1%})"
        f"   aspect {aspect} (mean {np.mean([a for _, a in folds]):.1%}, non-EN {foreign[1]:.1%})"
    )


def main() -> None:
    examples = [e for e in load(files_of(TUNING)) if e.split in TUNING]
    memo = Memo()
    t0 = time.perf_counter()
    memo.encode.get()
    load_s = time.perf_counter() - t0
    texts = {e.id: parse_prompt(e.prompt).plain_text.strip() for e in examples}
    vectors = np.stack([np.asarray(memo(texts[e.id]), dtype=np.float64) for e in examples])
    rules = {e.id: analyze_prompt(e.prompt) for e in examples}
    gated = [e for e in examples if no_content_evidence(rules[e.id])]
    print(f"{len(examples)} tuning prompts; the gate (no content evidence) fires on {len(gated)}")
    print("per split " + " · ".join(TUNING) + ":")
    table("rules", examples, rules)
    folded: dict[str, PromptAnalysis] = {}
    for held in TUNING:
        train = [i for i, e in enumerate(examples) if e.split != held]
        model = fit_content_model(vectors[train], [examples[i].content_type for i in train])
        analyzer = UseEvidenceAnalyzer(encoder=LazyEncoder(lambda: memo), model=model)
        folded.update({e.id: analyzer.analyze(e.prompt) for e in examples if e.split == held})
    table("use (left-out folds)", examples, folded)
    shipped = UseEvidenceAnalyzer(encoder=LazyEncoder(lambda: memo))
    table("use (shipped, in-sample)", examples, {e.id: shipped.analyze(e.prompt) for e in examples})
    changed = [e for e in gated if folded[e.id].content_type != rules[e.id].content_type]
    print(
        f"  gated prompts: rules right on {sum(rules[e.id].content_type == e.content_type for e in gated)}, "
        f"use (folds) on {sum(folded[e.id].content_type == e.content_type for e in gated)} of {len(gated)} "
        f"(content type changed on {len(changed)})"
    )
    for e in gated[:3]:
        print(f"    e.g. {e.id}: {folded[e.id].notes[-1]}; frame cue {folded[e.id].aspect.cue!r}")

    analyzer = UseEvidenceAnalyzer()
    analyzer.warm_up()  # the shared encoder: its own cold load, not timed below
    t0 = time.perf_counter()
    analyzer.warm_up()
    reload_ms = (time.perf_counter() - t0) * 1e3
    wall: list[float] = []
    gated_wall: list[float] = []
    ids = {e.id for e in gated}
    for _ in range(3):
        for e in examples:
            t1 = time.perf_counter()
            analyzer.analyze(e.prompt)
            (gated_wall if e.id in ids else wall).append((time.perf_counter() - t1) * 1e3)
    every = wall + gated_wall
    print(
        f"\nUSE encoder: cold load + first encode {load_s:.2f} s (once per process; warm_up() again "
        f"{reload_ms:.3f} ms). Analysis with the backend, warm, one thread, {len(every)} runs: p50 "
        f"{statistics.median(every):.2f} ms, p95 {percentile(every, 95):.2f} ms, max {max(every):.1f} ms; "
        f"gated prompts p50 {statistics.median(gated_wall):.2f} ms, p95 {percentile(gated_wall, 95):.2f} ms; "
        f"others p95 {percentile(wall, 95):.2f} ms"
    )


if __name__ == "__main__":
    if not is_available():
        raise SystemExit('use_backend.py needs: pip install "ml-lib[multilingual]"')
    main()
