"""scripts/build_use_prototypes.py reads the tuning rows only: ``test`` rows dropped, ``heldout10`` never opened."""

from __future__ import annotations

import json
from pathlib import Path

from build_use_prototypes import FIT, LABELS, tuning_rows


def test_only_tuning_rows_are_read(tmp_path: Path) -> None:
    def row(i: int, split: str) -> str:
        return json.dumps(
            {"id": f"r{i}", "split": split, "prompt": f"p{i}", "content_type": "photo", "aspect": "square"}
        )

    (tmp_path / "intelligence_eval.jsonl").write_text(
        f"{row(1, 'dev')}\n{row(2, 'test')}\n\n{row(3, 'dev')}\n"
    )
    names = (
        "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9",
        "train8", "train9",
    )  # fmt: skip
    for k, name in enumerate(names, 4):
        (tmp_path / f"intelligence_{name}.jsonl").write_text(row(k, name) + "\n")
    (tmp_path / "intelligence_heldout10.jsonl").mkdir()  # opening it would raise IsADirectoryError
    rows = tuning_rows(tmp_path)
    assert [(r["id"], r["split"]) for r in rows] == [
        ("r1", "dev"), ("r3", "dev"), ("r4", "heldout"), ("r5", "heldout2"), ("r6", "heldout3"),
        ("r7", "heldout4"), ("r8", "heldout5"), ("r9", "heldout6"), ("r10", "heldout7"), ("r11", "heldout8"),
        ("r12", "heldout9"), ("r13", "train8"), ("r14", "train9"),
    ]  # fmt: skip
    assert {r["aspect"] for r in rows} == {"square"} and LABELS == {
        "content": "content_type",
        "aspect": "aspect",
    }
    assert FIT == {"l2": 0.05, "steps": 600, "rate": 0.5}  # the probe's settings, recorded in the file
