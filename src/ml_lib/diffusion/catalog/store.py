"""The ``models`` table: one row per catalogued path, the record as JSON plus indexed columns."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .records import ModelKind, ModelRecord, Status

__all__ = ["ModelStore", "Stamp", "name_key"]

_COLUMNS = (
    "path, root, name_key, rel_key, kind, family, status, size, mtime_ns, sidecar_sig, fingerprint, "
    "sha256, autov2, addnet, search, record"
)


def name_key(text: str) -> str:
    """How names are compared: case-insensitive, '/' separators."""
    return text.replace("\\", "/").casefold()


@dataclass(frozen=True, slots=True)
class Stamp:
    """The columns a rescan compares, without decoding the record."""

    path: str
    size: int
    mtime_ns: int
    sidecar_sig: str
    status: Status
    fingerprint: str
    sha256: str | None


def _search_text(r: ModelRecord) -> str:
    parts = [
        r.name,
        r.rel_name,
        r.info.variant,
        r.info.derivative or "",
        r.info.title or "",
        *r.trigger_words,
    ]
    if r.sidecar is not None:
        parts += [r.sidecar.civitai_name or "", *r.sidecar.tags, r.sidecar.description or ""]
    if r.info.lora is not None:
        parts += [t.tag for t in r.info.lora.top_tags[:10]]
    return "\n".join(p for p in parts if p).casefold()


def _row(r: ModelRecord) -> tuple[object, ...]:
    return (
        r.path, r.root, name_key(r.name), name_key(r.rel_name), r.kind.value, r.family.value, r.status.value,
        r.size, r.mtime_ns, r.sidecar_sig, r.fingerprint, r.hashes.sha256, r.hashes.autov2, r.hashes.addnet,
        _search_text(r), r.to_json(),
    )  # fmt: skip


class ModelStore:
    """Read and write catalog records; the caller owns the connection and transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (the connection is in autocommit mode)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def generation(self) -> tuple[int, int]:
        """A value that changes whenever the database changes: SQLite's ``data_version`` (commits by other
        connections, e.g. a scan in another process) and this connection's ``total_changes`` (its own
        writes). Cheap enough to ask before every plan; caches of catalog reads key on it."""
        (version,) = self.conn.execute("PRAGMA data_version").fetchone()
        return int(version), self.conn.total_changes

    def put(self, records: Iterable[ModelRecord]) -> None:
        """Insert or replace records (by path)."""
        self.conn.executemany(
            f"INSERT OR REPLACE INTO models ({_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            [_row(r) for r in records],
        )

    def delete(self, paths: Iterable[str]) -> None:
        """Forget these paths."""
        self.conn.executemany("DELETE FROM models WHERE path = ?", [(p,) for p in paths])

    def stamps(self, roots: Collection[str]) -> tuple[Stamp, ...]:
        """What a rescan of ``roots`` compares against."""
        marks = ", ".join("?" * len(roots))
        rows = self.conn.execute(
            "SELECT path, size, mtime_ns, sidecar_sig, status, fingerprint, sha256 FROM models "
            f"WHERE root IN ({marks})",
            tuple(roots),
        ).fetchall()
        return tuple(Stamp(p, s, m, sig, Status(st), fp, sha) for p, s, m, sig, st, fp, sha in rows)

    def roots_of_layout(self, layout: str) -> tuple[str, ...]:
        """Roots that hold records of ``layout`` (e.g. built-ins of an earlier installation)."""
        rows = self.conn.execute(
            "SELECT DISTINCT root FROM models WHERE json_extract(record, '$.layout') = ?", (layout,)
        ).fetchall()
        return tuple(row[0] for row in rows)

    def _select(self, where: str, args: tuple[object, ...]) -> tuple[ModelRecord, ...]:
        rows = self.conn.execute(f"SELECT record FROM models WHERE {where} ORDER BY rel_key, path", args)
        return tuple(ModelRecord.from_json(row[0]) for row in rows)

    def get(self, path: str) -> ModelRecord | None:
        """The record at ``path``."""
        found = self._select("path = ?", (path,))
        return found[0] if found else None

    def many(self, paths: Collection[str]) -> tuple[ModelRecord, ...]:
        """Records of these paths (in chunks, for SQLite's parameter limit)."""
        items, out = list(paths), list[ModelRecord]()
        for i in range(0, len(items), 500):
            chunk = items[i : i + 500]
            out += self._select(f"path IN ({', '.join('?' * len(chunk))})", tuple(chunk))
        return tuple(out)

    def by_name(self, key: str) -> tuple[ModelRecord, ...]:
        """Records whose stem or relative name (case-folded) is ``key``."""
        return self._select("(name_key = ? OR rel_key = ?) AND status != 'missing'", (key, key))

    def by_hash(self, prefix: str) -> tuple[ModelRecord, ...]:
        """Records whose sha256, AutoV2 or addnet hash starts with ``prefix`` (at least 8 hex digits)."""
        like = prefix.lower() + "%"
        return self._select("sha256 LIKE ? OR autov2 = ? OR addnet LIKE ?", (like, prefix.lower(), like))

    def find(
        self,
        kind: ModelKind | None = None,
        family: str | None = None,
        text: str | None = None,
        statuses: Collection[Status] = (),
    ) -> tuple[ModelRecord, ...]:
        """Records matching every given filter (text: case-insensitive substring of names, tags, words)."""
        where, args = ["1"], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind.value)
        if family is not None:
            where.append("family = ?")
            args.append(family)
        if text:
            where.append("instr(search, ?) > 0")
            args.append(text.casefold())
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += [s.value for s in statuses]
        return self._select(" AND ".join(where), tuple(args))
