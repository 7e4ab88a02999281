"""The model catalog: scan roots into the database, find and get records, hash on demand.

A rescan only probes files whose (size, mtime_ns) or sidecars changed; files that vanished are marked
missing (their records stay); a file that moved or was renamed is recognised (same size and header,
then the same sha256 when one was known) and keeps its record and hashes.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sqlite3
import statistics
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AmbiguousModelError, ConfigError, ModelNotFoundError, ModelUnreadableError
from .builtins import BUILTIN_LAYOUT, builtin_dirs, builtin_root
from .families import Family
from .hashing import ADDNET, SHA256, HashCache, OnBytes
from .identify import folder_stamp, identify
from .layouts import ModelDir, Problem, discover
from .records import MODEL_SUFFIXES, FileHashes, ModelKind, ModelRecord, Status, StorageFormat
from .sidecars import sidecar_signature
from .store import ModelStore, Stamp, name_key
from .walk import Found, walk

__all__ = ["Catalog", "Move", "ScanProgress", "ScanReport"]

log = logging.getLogger(__name__)
_TITLE = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,64})\]$")  # A1111 title: "name [hash]"
_HEX = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True, slots=True)
class Move:
    """A file found at a new path, recognised as one the catalog knew elsewhere."""

    old: str
    new: str
    evidence: str


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """Progress of the probing phase of a scan."""

    done: int
    total: int
    path: str


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What a scan found and did."""

    roots: tuple[str, ...]
    folders: tuple[str, ...]
    files: int
    new: int
    changed: int
    unchanged: int
    missing: int
    broken: int
    unsafe: int
    moved: tuple[Move, ...]
    problems: tuple[Problem, ...]
    bytes_hashed: int
    probed: int
    probe_ms_median: float  # wall time per probed file: header read, matchers, sidecars
    probe_ms_p90: float
    probe_cpu_ms_median: float  # the same in CPU time (what other processes on the machine do not change)
    seconds: float


class Catalog:
    """Models on disk, remembered in the project database."""

    def __init__(
        self, conn: sqlite3.Connection, roots: Sequence[Path] = (), *, builtins: bool = True
    ) -> None:
        self.store = ModelStore(conn)
        self.builtins = builtins  # scans also walk the shipped demo model, LoRA and ControlNet
        self.hashes = HashCache(conn)
        self.roots = tuple(Path(r).expanduser() for r in roots)
        self._scanned = False

    # -- scanning -------------------------------------------------------------------------------
    def scan(
        self,
        roots: Sequence[Path] | None = None,
        *,
        on_progress: Callable[[ScanProgress], None] | None = None,
        builtins: bool | None = None,
    ) -> ScanReport:
        """Walk ``roots`` (default: the catalog's) and the built-ins, probe new and changed files, record
        everything. With no roots only the built-ins are scanned (an error when they are off)."""
        t0, now = time.perf_counter(), time.time()
        chosen = tuple(Path(r).expanduser().absolute() for r in (roots if roots is not None else self.roots))
        builtins = self.builtins if builtins is None else builtins
        if not chosen and not builtins:
            raise ConfigError("No model roots: set ML_DIFFUSION_MODELS or pass --root DIR.")
        bytes_before = self.hashes.bytes_hashed
        dirs: list[ModelDir] = []
        problems: list[Problem] = []
        for root in chosen:
            discovery = discover(root)
            dirs += discovery.dirs
            problems += discovery.problems
        if builtins:
            dirs += builtin_dirs()
            # this installation's built-ins, and those an earlier one left in the database (now missing)
            old = tuple(Path(r) for r in self.store.roots_of_layout(BUILTIN_LAYOUT))
            chosen += tuple(dict.fromkeys((builtin_root(), *old)))
        visited: set[tuple[int, int]] = set()
        found = [f for d in dirs for f in walk(d, visited, problems)]
        known = {s.path: s for s in self.store.stamps({str(r) for r in chosen})}
        todo = [f for f in found if not self._unchanged(f, known.get(str(f.path)))]
        fresh: list[ModelRecord] = []
        timings: list[float] = []
        cpu: list[float] = []
        for i, f in enumerate(todo):
            t, c = time.perf_counter(), time.thread_time()
            record = identify(f, now)
            timings.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            if record is not None:
                fresh.append(record)
            if on_progress is not None:
                on_progress(ScanProgress(i + 1, len(todo), str(f.path)))
        previous = {r.path: r for r in self.store.many([r.path for r in fresh if r.path in known])}
        seen = {str(f.path) for f in found}
        vanished = [s for p, s in known.items() if p not in seen and s.status is not Status.MISSING]
        records, moves, moved_from = self._carry_over(fresh, previous, vanished, known)
        gone = [r for r in self.store.many([s.path for s in vanished if s.path not in moved_from])]
        missing = [
            dataclasses.replace(r, status=Status.MISSING, updated=now, info=dataclasses.replace(
                r.info, reason=f"not found at the scan of {time.strftime('%Y-%m-%d %H:%M', time.localtime(now))}; "
                f"was: {r.info.reason}"))
            for r in gone
        ]  # fmt: skip
        with self.store.transaction():
            self.store.delete(moved_from)
            self.store.put([*records, *missing])
        self._scanned = True
        new = sum(1 for r in records if r.path not in previous) - len(moves)
        return ScanReport(
            roots=tuple(str(r) for r in chosen),
            folders=tuple(f"{d.layout}: {d.path}" for d in dirs),
            files=len(found),
            new=new,
            changed=len(previous),
            unchanged=len(found) - len(todo),
            missing=len(missing),
            broken=sum(1 for r in records if r.status is Status.BROKEN),
            unsafe=sum(1 for r in records if r.status is Status.UNSAFE),
            moved=tuple(moves),
            problems=tuple(problems),
            bytes_hashed=self.hashes.bytes_hashed - bytes_before,
            probed=len(timings),
            probe_ms_median=1000 * statistics.median(timings) if timings else 0.0,
            probe_ms_p90=1000 * sorted(timings)[int(0.9 * len(timings))] if timings else 0.0,
            probe_cpu_ms_median=1000 * statistics.median(cpu) if cpu else 0.0,
            seconds=time.perf_counter() - t0,
        )

    @staticmethod
    def _unchanged(f: Found, stamp: Stamp | None) -> bool:
        if stamp is None or stamp.status is Status.MISSING or f.problem:
            return False
        stem = f.path.name if f.folder else f.path.stem
        sig = "" if f.folder else sidecar_signature(stem, f.siblings)
        return (stamp.size, stamp.mtime_ns, stamp.sidecar_sig) == (*folder_stamp(f), sig)

    def _carry_over(
        self,
        fresh: list[ModelRecord],
        previous: dict[str, ModelRecord],
        vanished: list[Stamp],
        known: dict[str, Stamp],
    ) -> tuple[list[ModelRecord], list[Move], list[str]]:
        """Keep first-seen times and still-valid hashes; recognise moved files among the new ones."""
        out, moves, moved_from = [], [], []
        candidates = {s.path: s for s in vanished if s.fingerprint}
        for record in fresh:
            prev = previous.get(record.path)
            if prev is not None:
                same = (prev.size, prev.mtime_ns) == (record.size, record.mtime_ns)
                out.append(dataclasses.replace(record, first_seen=prev.first_seen,
                                               hashes=prev.hashes if same else FileHashes()))  # fmt: skip
                continue
            match = self._moved(record, candidates)
            if match is None:
                out.append(record)
                continue
            old, evidence, hashes = match
            del candidates[old.path]
            moved_from.append(old.path)
            moves.append(Move(old.path, record.path, evidence))
            out.append(dataclasses.replace(record, first_seen=old.first_seen, hashes=hashes))
        return out, moves, moved_from

    def _moved(
        self, record: ModelRecord, candidates: dict[str, Stamp]
    ) -> tuple[ModelRecord, str, FileHashes] | None:
        for stamp in candidates.values():
            if (stamp.size, stamp.fingerprint) != (record.size, record.fingerprint):
                continue
            old = self.store.get(stamp.path)
            if old is None:
                continue
            if stamp.sha256:
                if self.hashes.sha256(Path(record.path)) != stamp.sha256:
                    continue
                if old.hashes.addnet:
                    self.hashes.remember(Path(record.path), ADDNET, old.hashes.addnet)
                return old, "same sha256", old.hashes
            if stamp.mtime_ns == record.mtime_ns:
                return old, "same size, modification time and header (not hashed)", FileHashes()
        return None

    # -- queries --------------------------------------------------------------------------------
    def find(
        self,
        *,
        kind: ModelKind | None = None,
        family: Family | str | None = None,
        text: str | None = None,
        statuses: Collection[Status] = (Status.OK, Status.BROKEN, Status.UNSAFE),
    ) -> tuple[ModelRecord, ...]:
        """Records by kind, family (``Family.SDXL`` or ``"sdxl"``), free text (names, trigger words,
        tags) and status."""
        family_value = family.value if isinstance(family, Family) else family
        return self.store.find(kind, family_value, text, statuses)

    def generation(self) -> tuple[int, int]:
        """Changes whenever the catalog database does (see :meth:`ModelStore.generation`)."""
        return self.store.generation()

    def at(self, path: str) -> ModelRecord | None:
        """The record catalogued at exactly ``path``, if any (no scan, no name rules)."""
        return self.store.get(path)

    def lookup(self, ref: str, kinds: Collection[ModelKind] = ()) -> ModelRecord | None:
        """A1111's rules: relative name or file stem (with or without suffix, any case), then hash.

        Returns None when nothing matches; raises AmbiguousModelError when several different models do.
        """
        text = ref.strip()
        title = _TITLE.match(text)
        wanted_hash = title.group(2).lower() if title else None
        text = title.group(1) if title else text
        key = name_key(text)
        stem_key = key.rsplit(".", 1)[0] if "." + key.rsplit(".", 1)[-1] in MODEL_SUFFIXES else key
        rows = self.store.by_name(stem_key) + (self.store.by_name(key) if stem_key != key else ())
        rows = tuple(r for r in rows if not kinds or r.kind in kinds)
        if wanted_hash:
            rows = tuple(r for r in rows if (r.hashes.sha256 or "").startswith(wanted_hash)) or rows
        tiers = [
            [r for r in rows if name_key(r.rel_name) in (key, stem_key)],
            [r for r in rows if name_key(r.name) in (key, stem_key)],
        ]
        if _HEX.match(key):
            tiers.append([r for r in self.store.by_hash(key) if (not kinds or r.kind in kinds)
                          and r.status is not Status.MISSING])  # fmt: skip
        for tier in tiers:
            unique = list({r.path: r for r in tier}.values())
            if len(unique) == 1:
                return unique[0]
            if len(unique) > 1:
                shas = {r.hashes.sha256 for r in unique}
                if len(shas) == 1 and None not in shas:
                    return unique[0]  # copies of one file
                listing = "\n".join(f"  {r.rel_name}  ({r.path})" for r in unique)
                raise AmbiguousModelError(
                    f"{ref!r} fits {len(unique)} catalogued models:\n{listing}\n"
                    "Give the name with its sub-folder, the full path, or a hash.",
                    tuple(r.path for r in unique),
                )
        return None

    def resolve_name(self, ref: str, kinds: Collection[ModelKind] = ()) -> ModelRecord | None:
        """:meth:`lookup`, scanning the catalog's roots once first when nothing matched."""
        record = self.lookup(ref, kinds)
        if record is None and self.roots and not self._scanned:
            log.info("%r not in the catalog; scanning %d root(s)", ref, len(self.roots))
            self.scan()
            record = self.lookup(ref, kinds)
        return record

    def get(self, ref: str, kinds: Collection[ModelKind] = ()) -> ModelRecord:
        """A record by path, name (A1111 rules) or hash; raises ModelNotFoundError naming the fix."""
        path = Path(ref).expanduser()
        if path.exists():
            record = self.store.get(str(path)) or self.store.get(str(path.absolute()))
            if record is None:
                raise ModelNotFoundError(
                    f"{path} is not in the catalog; run `ml-diffusion models scan --root DIR`."
                )
            return record
        record = self.resolve_name(ref, kinds)
        if record is None:
            what = "/".join(k.value for k in kinds) or "model"
            raise ModelNotFoundError(
                f"No catalogued {what} named {ref!r} (by file name, sub-folder/name or hash). "
                "Run `ml-diffusion models scan --root DIR` to add a folder, or `ml-diffusion models list`."
            )
        return record

    # -- hashing --------------------------------------------------------------------------------
    def hash(
        self, records: Sequence[ModelRecord] | None = None, *, on_bytes: OnBytes | None = None
    ) -> tuple[ModelRecord, ...]:
        """Compute (or take from the cache) sha256 — and the addnet hash of safetensors LoRAs — and store."""
        chosen = (
            records if records is not None else self.find(statuses=(Status.OK, Status.UNSAFE, Status.BROKEN))
        )
        out: list[ModelRecord] = []
        changed: list[ModelRecord] = []
        last_write = time.monotonic()
        with self.hashes.batch():  # one commit every few seconds, not one per file
            for record in chosen:
                if record.format is StorageFormat.DIFFUSERS or record.status is Status.MISSING:
                    out.append(record)
                    continue
                lora = record.kind is ModelKind.LORA and record.format is StorageFormat.SAFETENSORS
                algos = (SHA256, ADDNET) if lora and record.status is Status.OK else (SHA256,)
                try:
                    digests = self.hashes.digests(Path(record.path), algos, on_bytes)
                except ModelUnreadableError as exc:  # one unreadable file does not stop the rest
                    log.warning("not hashed: %s", exc)
                    out.append(record)
                    continue
                hashes = FileHashes(digests.sha256, digests.addnet or record.hashes.addnet)
                out.append(dataclasses.replace(record, hashes=hashes, updated=time.time()))
                changed.append(out[-1])
                if time.monotonic() - last_write > 2.0:
                    self._save_hashes(changed)
                    changed, last_write = [], time.monotonic()
            self._save_hashes(changed)
        return tuple(out)

    def _save_hashes(self, records: list[ModelRecord]) -> None:
        self.hashes.flush()
        with self.store.transaction():
            self.store.put(records)
