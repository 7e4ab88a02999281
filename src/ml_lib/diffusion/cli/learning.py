"""``ml-diffusion learning show|reset|export|import``: what was learned, and the history as a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ._common import console, run
from .options import JsonOpt

__all__ = ["learning_app"]

learning_app = typer.Typer(
    help="What ml-diffusion learned from your ratings and edits.", no_args_is_help=True
)


def _generator() -> Any:
    from ..facade import ImageGenerator

    return ImageGenerator()


@learning_app.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """What was learned, per context (family / content type / style), with how much evidence."""

    def action() -> None:
        from .._codec import to_jsonable

        with _generator() as gen:
            prefs = gen.learning.preferences()
        if as_json:
            typer.echo(json.dumps(to_jsonable(prefs), indent=2, ensure_ascii=True))
            return
        if not prefs.contexts:
            console().print("nothing learned yet: rate images with `ml-diffusion rate IMAGE STARS`")
            return
        table = Table()
        for column in ("context", "plans", "learned", "evidence", "why"):
            table.add_column(column, overflow="fold")
        for c in prefs.contexts:
            rows = [(v.field, f"{v.value}", v.evidence, v.reason) for v in c.values]
            rows += [(f"lora {p.name}", p.action, p.evidence, p.reason) for p in c.loras]
            if not rows:
                table.add_row(c.key, str(c.count), "defaults (still exploring)", "", "")
            for field, value, evidence, why in rows:
                table.add_row(c.key, str(c.count), escape(f"{field} = {value}"), f"{evidence:g}", escape(why))
        console().print(table)

    run(ctx, action)


@learning_app.command("reset")
def reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Forget what was learned (plans go back to the defaults); history and ratings are kept."""

    def action() -> None:
        if not yes and not typer.confirm("Forget what was learned from your ratings and edits so far?"):
            console().print("nothing changed")
            return
        with _generator() as gen:
            gen.learning.reset()
        console().print("learning reset: later plans learn only from ratings and edits made from now on")

    run(ctx, action)


@learning_app.command("export")
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL file to write (replaced atomically).")],
) -> None:
    """Write the whole history (generations, ratings, edits) to a JSONL file."""

    def action() -> None:
        with _generator() as gen:
            lines = gen.learning.export(file)
        console().print(f"exported {lines - 1} lines to {escape(str(file))}")

    run(ctx, action)


@learning_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file from `ml-diffusion learning export`.")],
) -> None:
    """Add an exported history (all or nothing; generations and events already here are skipped)."""

    def action() -> None:
        with _generator() as gen:
            gens, events = gen.learning.import_(file)
        console().print(f"imported {gens} generations and {events} feedback events")

    run(ctx, action)
