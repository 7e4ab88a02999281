"""sha256 / AutoV2 and kohya's addnet hash, as A1111 computes them, cached by (path, size, mtime_ns)."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from ml_lib.diffusion.catalog.hashing import ADDNET, SHA256, HashCache, addnet_file, sha256_file
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters


def _a1111_addnet(path: Path) -> str:
    """A1111's ``addnet_hash_safetensors``, written out."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        fh.seek(n + 8)
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _lora(path: Path) -> Path:
    fakes.write_fake_safetensors(path, adapters.lora_keys("sd1", rank=4))
    with path.open("r+b") as fh:  # some non-zero data, across a chunk boundary
        fh.seek((1 << 20) - 3)
        fh.write(os.urandom(4096))
    return path


def test_addnet_and_sha256_match_a1111(tmp_path: Path) -> None:
    path = _lora(tmp_path / "l.safetensors")
    data = path.read_bytes()
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert addnet_file(path) == _a1111_addnet(path)
    n = struct.unpack("<Q", data[:8])[0]
    assert addnet_file(path) == hashlib.sha256(data[8 + n :]).hexdigest()


def test_one_read_for_both_then_cache(tmp_path: Path) -> None:
    path = _lora(tmp_path / "l.safetensors")
    cache = HashCache(connect(tmp_path / "db.sqlite3"))
    seen: list[int] = []
    both = cache.digests(path, (SHA256, ADDNET), seen.append)
    assert (both.sha256, both.addnet) == (sha256_file(path), addnet_file(path))
    assert sum(seen) == path.stat().st_size == cache.bytes_hashed
    assert cache.digests(path, (SHA256, ADDNET)) == both and cache.bytes_hashed == path.stat().st_size
    link = tmp_path / "link.safetensors"
    link.symlink_to(path)
    assert cache.addnet(link) == both.addnet and cache.bytes_hashed == path.stat().st_size
    os.utime(path, ns=(5, 5))
    assert cache.cached(path) is None
    assert cache.sha256(path) == both.sha256 and cache.bytes_hashed == 2 * path.stat().st_size


def test_batch_holds_writes_back_until_the_end(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    cache = HashCache(conn)
    path = _lora(tmp_path / "l.safetensors")
    rows = "SELECT count(*) FROM file_digests"
    with cache.batch():
        first = cache.digests(path, (SHA256, ADDNET))
        assert conn.execute(rows).fetchone()[0] == 0
        assert cache.cached(path) == first.sha256 and cache.bytes_hashed == path.stat().st_size
    assert conn.execute(rows).fetchone()[0] == 2
    assert HashCache(conn).cached(path, ADDNET) == first.addnet
