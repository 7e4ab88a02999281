"""``ml-diffusion info`` and ``ml-diffusion reproduce``: what an image says about itself, and again."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ._common import console, run, safe_text
from .options import JsonOpt, OutOpt

__all__ = ["info", "reproduce"]


def info(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="PNG, JPEG or WebP image.")],
    as_json: JsonOpt = False,
) -> None:
    """Show the generation metadata of IMAGE (ours or any A1111-compatible tool's)."""

    def action() -> None:
        from ..facade import ImageGenerator

        meta = ImageGenerator().info(image)
        if as_json:
            data = {
                "format": meta.format,
                "infotext": meta.infotext,
                "parameters": dict(meta.parsed.parameters) if meta.parsed else None,
                "plan": meta.plan.to_dict() if meta.plan else None,
            }
            typer.echo(json.dumps(data, indent=2, ensure_ascii=True))  # escapes: no terminal sequences
            return
        out = console()
        if meta.infotext is None and meta.plan is None:
            out.print(f"{safe_text(str(image))}: no generation metadata")
            return
        if meta.parsed is not None:
            out.print(f"[bold]Prompt:[/] {safe_text(meta.parsed.prompt)}")
            if meta.parsed.negative_prompt:
                out.print(f"[bold]Negative prompt:[/] {safe_text(meta.parsed.negative_prompt)}")
            table = Table(show_header=False)
            for key, value in dict(meta.parsed.parameters).items():
                table.add_row(safe_text(key), safe_text(value))
            out.print(table)
        if meta.plan is not None:
            command = f"ml-diffusion reproduce {shlex.quote(str(image))}"
            out.print(
                f"[dim]Embedded ml-diffusion plan: {len(meta.plan.decisions)} decisions; "
                f"`{safe_text(command)}` regenerates it.[/]"
            )

    run(ctx, action)


def reproduce(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="An image written by ml-diffusion.")],
    out: OutOpt = None,
    allow_hub: Annotated[
        bool, typer.Option("--allow-hub", help="Let the embedded plan download a Hub model.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate IMAGE from the plan embedded in it (checked first, like a request)."""

    def action() -> None:
        from ..facade import ImageGenerator

        with ImageGenerator() as gen:
            result = gen.reproduce(image, output_dir=out, allow_hub=allow_hub)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
            return
        for path, image_seed in zip(result.paths, result.seeds, strict=True):
            console().print(f"saved [bold]{escape(str(path))}[/] (seed {image_seed})")

    run(ctx, action)
