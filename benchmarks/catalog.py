"""Model catalog over generated files: cold-scan probe time, unchanged rescan, hashing throughput.

Run: ``python benchmarks/catalog.py [--files 2000] [--hash-mb 1024] [--rounds 3]``.

- A library of ``--files`` sparse safetensors files with real headers (A1111 layout; a realistic mix:
  mostly LoRAs of several families and networks, checkpoints, embeddings, VAEs, ControlNets…) is written
  to a temporary folder. Targets: median probe time per file ≤ 1 ms; an unchanged rescan hashes 0 bytes.
- Hashing: the catalog's sha256 (``HashCache``) against a plain ``hashlib`` loop over the same files,
  interleaved rounds, cache emptied each round (target ≥ 0.9x); and ``Catalog.hash`` (sha256 + the
  addnet hash of LoRAs, in one read) against a plain loop computing the same two digests.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ml_lib.diffusion.catalog.catalog import Catalog
from ml_lib.diffusion.catalog.hashing import SHA256, HashCache
from ml_lib.diffusion.catalog.records import ModelKind
from ml_lib.diffusion.db import connect
from ml_lib.diffusion.testing import fakes
from ml_lib.diffusion.testing import fakes_adapters as adapters

#: (share of the library, folder, builder, metadata builder)
MIX = (
    (
        0.30,
        "Lora/sd15",
        lambda: adapters.lora_keys("sd1"),
        lambda i: adapters.kohya_metadata(
            output_name=f"l{i}", tags={f"10_char{i}": {f"tag{j}": 100 - j for j in range(40)}}
        ),
    ),
    (
        0.18,
        "Lora/xl",
        lambda: adapters.lora_keys("sdxl", text_encoder=False),
        lambda i: adapters.kohya_metadata("sdxl_base_v1-0", output_name=f"x{i}", resolution="(1024, 1024)"),
    ),
    (0.07, "Lora/xl-peft", lambda: adapters.lora_keys("sdxl", style="peft", rank=16), lambda i: None),
    (0.05, "LyCORIS", lambda: adapters.lora_keys("sd1", network="loha", rank=4), lambda i: None),
    (0.12, "../embeddings", lambda: adapters.embedding_keys("sd1"), lambda i: None),
    (0.08, "Stable-diffusion/sd15", lambda: fakes.checkpoint_keys("sd1"), lambda i: None),
    (0.07, "Stable-diffusion/xl", lambda: fakes.checkpoint_keys("sdxl"), lambda i: None),
    (0.05, "VAE", lambda: fakes.vae_keys(), lambda i: None),
    (0.05, "ControlNet", lambda: adapters.controlnet_keys("sd1"), lambda i: None),
    (0.03, "ControlNet/lora", lambda: adapters.controlnet_keys("sdxl", control_lora=True), lambda i: None),
)


def make_library(root: Path, count: int) -> list[Path]:
    """``count`` files in an A1111 layout under ``root`` (webui/models/…)."""
    models = root / "webui" / "models"
    paths = []
    for share, folder, keys_of, meta_of in MIX:
        keys = keys_of()
        for i in range(max(1, round(share * count))):
            path = models / folder / f"m{len(paths):05d}.safetensors"
            fakes.write_fake_safetensors(path, keys, meta_of(i))
            paths.append(path)
    (models / "Stable-diffusion").mkdir(parents=True, exist_ok=True)
    return paths


def plain_loop(paths: list[Path], addnet: bool = False) -> int:
    """sha256 (and optionally the addnet digest) with nothing but hashlib, one read per file."""
    total = 0
    for path in paths:
        whole, tail = hashlib.sha256(), hashlib.sha256()
        with path.open("rb") as fh:
            skip = 8 + struct.unpack("<Q", fh.read(8))[0] if addnet else 0
            fh.seek(0)
            pos = 0
            while chunk := fh.read(1 << 20):
                whole.update(chunk)
                if addnet:
                    tail.update(chunk[max(0, skip - pos) :])
                pos += len(chunk)
                total += len(chunk)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--hash-mb", type=int, default=1024, help="bytes of LoRA files to hash per side")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="ml-diffusion-catalog-bench-"))
    t = time.perf_counter()
    paths = make_library(base, args.files)
    print(f"library: {len(paths)} files written in {time.perf_counter() - t:.1f}s under {base}")

    conn = connect(base / "db.sqlite3")
    catalog = Catalog(conn, [base / "webui"])
    cold = catalog.scan()
    cpu = cold.probe_cpu_ms_median
    print(
        f"cold scan: {cold.files} files in {cold.seconds:.2f}s ({cold.files / cold.seconds:.0f} files/s); probe per "
        f"file: median {cold.probe_ms_median:.3f} ms wall (p90 {cold.probe_ms_p90:.3f} ms), median {cpu:.3f} ms CPU "
        f"(target median <= 1 ms: {'ok' if cpu <= 1 else 'MISSED'} on CPU time, "
        f"{'ok' if cold.probe_ms_median <= 1 else 'missed'} on wall time)"
    )
    warm = catalog.scan()
    print(
        f"unchanged rescan: {warm.seconds:.2f}s, {warm.unchanged}/{warm.files} unchanged, "
        f"{warm.probed} probed, {warm.bytes_hashed} bytes hashed "
        f"(target 0: {'ok' if warm.bytes_hashed == 0 and not warm.probed else 'MISSED'})"
    )

    loras = [r for r in catalog.find(kind=ModelKind.LORA)]
    random.Random(0).shuffle(loras)
    chosen, total = [], 0
    for record in loras:
        if total >= args.hash_mb * 2**20:
            break
        chosen.append(record)
        total += record.size
    files = [Path(r.path) for r in chosen]
    cache = HashCache(conn)
    # Interleaved per file (plain, then ours) so that other load on the machine hits both alike; hashing is
    # CPU-bound here (sparse files read as zero pages), so CPU time is reported next to wall time.
    wall = {"plain": 0.0, "ours": 0.0, "plain2": 0.0, "ours2": 0.0}
    cpu = dict.fromkeys(wall, 0.0)

    def timed(key: str, action: Callable[[], object]) -> None:
        t, c = time.perf_counter(), time.thread_time()
        action()
        wall[key] += time.perf_counter() - t
        cpu[key] += time.thread_time() - c

    for _ in range(args.rounds):
        conn.execute("DELETE FROM file_digests")
        for path in files:
            timed("plain", lambda path=path: plain_loop([path]))
            timed("ours", lambda path=path: cache.digests(path, (SHA256,)))
        conn.execute("DELETE FROM file_digests")
        timed("plain2", lambda: plain_loop(files, addnet=True))
        timed("ours2", lambda: catalog.hash(chosen))  # as `models hash` runs: one call, batched commits
    mb = total * args.rounds / 2**20
    ratio, ratio_cpu = wall["plain"] / wall["ours"], cpu["plain"] / cpu["ours"]
    print(
        f"hashing sha256 over {len(files)} LoRA files ({total / 2**20:.0f} MB) x {args.rounds} rounds: catalog "
        f"{mb / wall['ours']:.0f} MB/s, plain hashlib {mb / wall['plain']:.0f} MB/s: ratio {ratio:.2f}x wall, "
        f"{ratio_cpu:.2f}x CPU (target >= 0.9x: {'ok' if min(ratio, ratio_cpu) >= 0.9 else 'MISSED'})"
    )
    print(
        f"hashing sha256 + addnet in one read: Catalog.hash {mb / wall['ours2']:.0f} MB/s, plain loop "
        f"{mb / wall['plain2']:.0f} MB/s: ratio {wall['plain2'] / wall['ours2']:.2f}x wall, "
        f"{cpu['plain2'] / cpu['ours2']:.2f}x CPU"
    )
    before = catalog.hashes.bytes_hashed
    rehash = catalog.hash(chosen)
    print(f"hash again (cached): {len(rehash)} records, {catalog.hashes.bytes_hashed - before} bytes read")


if __name__ == "__main__":
    main()
