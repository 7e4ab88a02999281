"""Would a learned layer on top of the rules beat them? Leave-one-split-out over the tuning splits only.

Run: ``python benchmarks/learned_layer.py [--words]``. A multinomial logistic regression (numpy, L2, batch
gradient descent) over what the rules' analysis already computes — every content type's support, the
chosen type, subject kinds, language, frame and its source, style and medium cues — and, with ``--words``,
the prompt's (glossed) word stems, is trained on all tuning splits but one and scored on that one, for content
type and aspect, beside the rules on the same rows. Only the tuning splits are read (``intelligence.TUNING``);
held-out files are not opened.
"""

from __future__ import annotations

import argparse

import numpy as np
from intelligence import TUNING, Example, coarse, files_of, load

from ml_lib.diffusion.prompt.analysis import PromptAnalysis
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.gloss import gloss_tokens
from ml_lib.diffusion.prompt.lexicon import tokenize
from ml_lib.diffusion.prompt.use_model import softmax_weights

FRAMES = ("portrait", "landscape", "square")


def features(analysis: PromptAnalysis, prompt: str, words: bool) -> dict[str, float]:
    """The analysis' own readings (and, with ``words``, the word stems) as named features."""
    out = {"bias": 1.0, "chosen:" + analysis.content_type: 1.0, "lang_en": float(analysis.language == "en")}
    out.update({"score:" + s.label: s.score for s in analysis.content_scores})
    for subject in analysis.subjects:
        out["subject:" + subject.label] = 1.0
        out["several"] = max(out.get("several", 0.0), float(subject.count > 1))
    out["frame:" + coarse(analysis.aspect.orientation)] = 1.0
    out["frame_source:" + analysis.aspect.source] = 1.0
    out.update({"cue:" + c.label: 1.0 for c in (*analysis.mediums, *analysis.styles)})
    if words:
        tokens = tokenize(prompt)
        glossed = gloss_tokens(tokens, analysis.language)
        out.update(
            {"word:" + t.stem: 1.0 for t in (glossed.tokens if glossed else tokens) if not t.is_separator}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--words", action="store_true", help="add the prompt's word stems as features")
    args = parser.parse_args()
    examples: list[Example] = [e for e in load(files_of(TUNING)) if e.split in TUNING]
    analyses = {e.id: analyze_prompt(e.prompt) for e in examples}
    named = {e.id: features(analyses[e.id], e.prompt, args.words) for e in examples}
    columns = {name: k for k, name in enumerate(sorted({n for f in named.values() for n in f}))}

    def matrix(rows: list[Example]) -> np.ndarray:
        m = np.zeros((len(rows), len(columns)))
        for i, e in enumerate(rows):
            for name, value in named[e.id].items():
                m[i, columns[name]] = value
        return m

    content_classes = tuple(sorted({e.content_type for e in examples}))
    targets = (
        ("content type", content_classes, lambda e: e.content_type, lambda a: a.content_type),
        ("aspect", FRAMES, lambda e: coarse(e.aspect), lambda a: coarse(a.aspect.orientation)),
    )
    for name, classes, want, got in targets:
        for held in TUNING:
            train_rows = [e for e in examples if e.split != held]
            test_rows = [e for e in examples if e.split == held]
            y = np.array([classes.index(want(e)) for e in train_rows])
            x = matrix(train_rows)
            w = softmax_weights(x, y, len(classes), l2=1.0 / len(x), steps=400)  # L2 of 1 on the summed loss
            predicted = (matrix(test_rows) @ w).argmax(axis=1)
            learned = np.mean([classes[p] == want(e) for p, e in zip(predicted, test_rows, strict=True)])
            rules = np.mean([got(analyses[e.id]) == want(e) for e in test_rows])
            print(f"{name:<12} left out {held:<9} rules {rules:6.1%}   logistic {learned:6.1%}")


if __name__ == "__main__":
    main()
