"""Temp files left by a killed save are cleaned at the next save: only ours, only stale ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ml_lib.diffusion.output.writer import STALE_TEMP_SECONDS

from .test_writer import save

OLD = time.time() - STALE_TEMP_SECONDS - 60


def _file(path: Path, age_from: float | None = OLD) -> Path:
    path.write_bytes(b"half an image")
    if age_from is not None:
        os.utime(path, (age_from, age_from))
    return path


def test_stale_temp_files_of_a_killed_save_are_removed(tmp_path: Path) -> None:
    stale = [_file(tmp_path / f".tmp-{'0123456789abcdef'}{ext}") for ext in (".png", ".jpg", ".webp")]
    saved = save(tmp_path)
    assert saved.exists()
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.name]


def test_recent_temp_files_may_belong_to_a_save_in_progress(tmp_path: Path) -> None:
    fresh = _file(tmp_path / ".tmp-fedcba9876543210.png", age_from=None)
    save(tmp_path)
    assert fresh.exists()


def test_files_that_only_look_like_ours_are_kept(tmp_path: Path) -> None:
    kept = [
        _file(tmp_path / ".tmp-notours.png"),
        _file(tmp_path / ".tmp-0123456789abcdef.txt"),
        _file(tmp_path / ".tmp-0123456789ABCDEF.png"),
        _file(tmp_path / "x.tmp-0123456789abcdef.png"),
        _file(tmp_path / ".tmp-0123456789abcdef0.png"),
    ]
    (tmp_path / ".tmp-0123456789abcdee.png").mkdir()
    os.utime(tmp_path / ".tmp-0123456789abcdee.png", (OLD, OLD))
    target = _file(tmp_path / "precious.png")
    link = tmp_path / ".tmp-1111111111111111.png"
    link.symlink_to(target)
    os.utime(link, (OLD, OLD), follow_symlinks=False)
    save(tmp_path)
    assert all(p.exists() for p in kept) and (tmp_path / ".tmp-0123456789abcdee.png").is_dir()
    assert target.exists() and link.is_symlink()
