"""Word overlap of a new held-out split with every earlier labelled row: near-copies are not held out.

Run: ``python benchmarks/heldout_overlap.py heldout3 [--threshold 0.45]``. For each row of the split (prompts
and LoRA queries), the earlier row (any other split of any file in ``benchmarks/data``) sharing the largest
share of its words (Jaccard of lower-cased word sets); rows at or over the threshold are listed, then the
largest overlap left. Words are compared, so a translation of an earlier row is not found: check those by
reading the new non-English rows against the earlier ones.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

DATA = Path(__file__).parent / "data"
_WORD = re.compile(r"\w+")


def words(text: str) -> frozenset[str]:
    """The lower-cased words of ``text``."""
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared words over all words of the two sets."""
    return len(a & b) / len(a | b) if a or b else 0.0


def rows(folder: Path = DATA) -> list[tuple[str, str, str]]:
    """(split, id, prompt) of every labelled row with a prompt (the LoRA library has none)."""
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if "prompt" in row and "split" in row:
                out.append((str(row["split"]), str(row["id"]), str(row["prompt"])))
    return out


def nearest(split: str, all_rows: list[tuple[str, str, str]]) -> list[tuple[float, str, str, str, str]]:
    """For each row of ``split``: (overlap, its id, its prompt, nearest earlier id, that prompt), largest
    overlap first."""
    earlier = [(i, p, words(p)) for s, i, p in all_rows if s != split]
    out = []
    for s, i, p in all_rows:
        if s != split:
            continue
        mine = words(p)
        best = max(((jaccard(mine, w), j, q) for j, q, w in earlier), default=(0.0, "", ""))
        out.append((best[0], i, p, best[1], best[2]))
    return sorted(out, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("split", help="the new split, e.g. heldout3")
    parser.add_argument("--threshold", type=float, default=0.45)
    args = parser.parse_args()
    found = nearest(args.split, rows())
    if not found:
        raise SystemExit(f"no rows of split {args.split!r} in {DATA}")
    for overlap, i, p, j, q in found:
        if overlap >= args.threshold:
            print(f"{overlap:.2f} {i} {p!r} ~ {j} {q!r}")
    print(f"{len(found)} rows of {args.split}; largest overlap with an earlier row {found[0][0]:.2f}")


if __name__ == "__main__":
    main()
