"""Textual-inversion embeddings named in a prompt, matched against the catalog's embeddings (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..catalog.records import ModelKind, ModelRecord, Status
from ..plan import Decision, EmbeddingUse, GenerationPlan, Source
from ..prompt.syntax import parse_prompt

__all__ = ["KnownEmbedding", "embeddings_in", "known_embeddings", "with_embeddings"]


@dataclass(frozen=True, slots=True)
class KnownEmbedding:
    """An embedding file on disk: the name prompts use (its stem), where it is, its family and hash."""

    name: str
    path: str
    family: str = "unknown"
    hash: str | None = None


def embeddings_in(
    texts: Iterable[str], known: Iterable[KnownEmbedding], family: str
) -> tuple[EmbeddingUse, ...]:
    """The known embeddings the texts name, as A1111 finds them (bare word or ``embedding:name``).

    Embeddings of another model family are ignored (A1111 skips them too); unknown families are allowed.
    """
    usable = {k.name: k for k in known if k.family in ("unknown", family)}
    if not usable:
        return ()
    found: dict[str, EmbeddingUse] = {}
    for text in texts:
        for ref in parse_prompt(text, embeddings=tuple(usable)).embeddings:
            item = usable.get(ref.name)
            if item is not None and item.name not in found:
                found[item.name] = EmbeddingUse(item.name, item.path, item.hash)
    return tuple(found.values())


def known_embeddings(records: Iterable[ModelRecord]) -> tuple[KnownEmbedding, ...]:
    """Catalogued embedding files as KnownEmbedding (A1111's TI hash: the first 12 hex of the sha256)."""
    return tuple(
        KnownEmbedding(r.name, r.path, r.family.value, r.hashes.sha256[:12] if r.hashes.sha256 else None)
        for r in records
        if r.kind is ModelKind.EMBEDDING and r.status is Status.OK
    )


def with_embeddings(
    plan: GenerationPlan, known: Iterable[KnownEmbedding], hash_of: Callable[[str], str] | None = None
) -> GenerationPlan:
    """``plan`` with the embeddings its prompts name, each recorded as a Decision.

    ``hash_of(path)`` gives a file's sha256 when the catalog has none yet (A1111's TI hash is its first 12).
    """
    found = embeddings_in((plan.prompt, plan.negative_prompt), known, plan.model.family)
    if not found:
        return plan
    if hash_of is not None:
        found = tuple(e if e.hash else dataclasses.replace(e, hash=hash_of(e.path)[:12]) for e in found)
    decisions = tuple(
        Decision("embedding", e.name, Source.CATALOG, f"named in the prompt; {e.path}") for e in found
    )
    return dataclasses.replace(plan, embeddings=found, decisions=plan.decisions + decisions)
