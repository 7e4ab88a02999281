"""scripts/build_use_prototypes.py reads the tuning rows only: ``test`` rows dropped, ``heldout7`` never opened."""

from __future__ import annotations

import json
from pathlib import Path

from build_use_prototypes import FIT, tuning_rows


def test_only_tuning_rows_are_read(tmp_path: Path) -> None:
    def row(i: int, split: str) -> str:
        return json.dumps({"id": f"r{i}", "split": split, "prompt": f"p{i}", "content_type": "photo"})

    (tmp_path / "intelligence_eval.jsonl").write_text(
        f"{row(1, 'dev')}\n{row(2, 'test')}\n\n{row(3, 'dev')}\n"
    )
    for k, name in enumerate(("heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6"), 4):
        (tmp_path / f"intelligence_{name}.jsonl").write_text(row(k, name) + "\n")
    (tmp_path / "intelligence_heldout7.jsonl").mkdir()  # opening it would raise IsADirectoryError
    rows = tuning_rows(tmp_path)
    assert [(r["id"], r["split"]) for r in rows] == [
        ("r1", "dev"), ("r3", "dev"), ("r4", "heldout"), ("r5", "heldout2"), ("r6", "heldout3"),
        ("r7", "heldout4"), ("r8", "heldout5"), ("r9", "heldout6"),
    ]  # fmt: skip
    assert FIT == {"l2": 0.05, "steps": 600, "rate": 0.5}  # the probe's settings, recorded in the file
