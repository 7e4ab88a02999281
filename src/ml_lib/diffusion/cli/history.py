"""``ml-diffusion rate``, ``history`` and ``stats``: feedback on generations, and what was generated."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ._common import console, run, safe_text
from .options import JsonOpt

__all__ = ["history", "rate", "stats"]


def _generator() -> Any:
    from ..facade import ImageGenerator

    return ImageGenerator()


def rate(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="An image ml-diffusion generated, or a generation id.")],
    stars: Annotated[str, typer.Argument(help="1 to 5 stars, or up / down (5 / 1).")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="A tag, e.g. 'too dark'. Repeatable.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A free-text note.")] = None,
) -> None:
    """Rate a generated image 1-5 (kept in the history; later plans learn from it)."""

    def action() -> None:
        with _generator() as gen:
            event = gen.rate(target, stars, tuple(tag or ()), note)
        tags = f" [{', '.join(event.tags)}]" if event.tags else ""
        console().print(f"rated {event.generation_id}: {event.stars} stars{safe_text(tags)}")

    run(ctx, action)


def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List recorded generations, newest first, with their ratings and tags."""

    def action() -> None:
        with _generator() as gen:
            entries = gen.history(limit)
        if as_json:
            rows = [
                {
                    "id": e.record.id,
                    "created": e.record.created,
                    "prompt": e.record.prompt,
                    "context": [
                        e.record.context.family,
                        e.record.context.content_type,
                        e.record.context.style,
                    ],
                    "stars": e.stars,
                    "tags": list(e.tags),
                    "deleted": e.deleted,
                    "edited_into": e.edited_into,
                    "overrides": [[o.field, o.recommended, o.used] for o in e.record.overrides],
                    "paths": [o.path for o in e.record.outputs],
                }
                for e in entries
            ]
            typer.echo(json.dumps(rows, indent=2, ensure_ascii=True))
            return
        if not entries:
            console().print("no generations recorded yet")
            return
        table = Table()
        for column in ("id", "when", "stars", "prompt", "changed", "file"):
            table.add_column(column, overflow="fold")
        for e in entries:
            when = datetime.fromtimestamp(e.record.created).strftime("%Y-%m-%d %H:%M")
            changed = ", ".join(o.field for o in e.record.overrides)
            files = ", ".join(Path(o.path).name for o in e.record.outputs)
            stars = "★" * e.stars if e.stars else ("deleted" if e.deleted else "")
            table.add_row(
                e.record.id[:12], when, stars, safe_text(e.record.prompt[:60]), changed, safe_text(files)
            )
        console().print(table)

    run(ctx, action)


def stats(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Totals over the history: generations, ratings, what you change most, tags."""

    def action() -> None:
        from .._codec import to_jsonable

        with _generator() as gen:
            s = gen.learning.stats()
        if as_json:
            typer.echo(json.dumps(to_jsonable(s), indent=2, ensure_ascii=True))
            return
        out = console()
        mean = f", mean {s.mean_stars:.2f} stars" if s.mean_stars is not None else ""
        out.print(f"{s.generations} generations, {s.rated} rated{mean}, {s.edits} regenerated with changes")
        for title, pairs in (("you changed", s.overrides), ("tags", s.tags), ("content", s.by_content)):
            if pairs:
                out.print(f"{title}: " + ", ".join(f"{safe_text(k)} {n}" for k, n in pairs))

    run(ctx, action)
