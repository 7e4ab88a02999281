"""Real-size SD1.5 and SDXL checkpoints as header-only sparse files, for what-if planning tests."""

from __future__ import annotations

from pathlib import Path

from ml_lib.diffusion.catalog.hashing import SHA256, HashCache
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.testing.fakes import checkpoint_keys, write_fake_safetensors


def write_models(folder: Path, db: Path) -> dict[str, Path]:
    """``{"sd1": path, "sdxl": path}``: A1111-layout files with every real tensor name and shape and no data,
    their sha256 cached in ``db`` (so planning does not read gigabytes of holes)."""
    models = {
        kind: write_fake_safetensors(folder / f"{kind}.safetensors", checkpoint_keys(kind))
        for kind in ("sd1", "sdxl")
    }
    conn = connect(db)
    cache = HashCache(conn)
    for kind, path in models.items():
        cache.remember(path, SHA256, kind.encode().hex().ljust(64, "0"))
    conn.close()
    return models
