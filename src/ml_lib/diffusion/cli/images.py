"""``ml-diffusion info`` and ``ml-diffusion reproduce``: what an image says about itself, and again."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ._common import console, run, safe_text
from .options import JsonOpt, OutOpt

if TYPE_CHECKING:
    from rich.console import Console

    from ..output.foreign import ForeignMetadata

__all__ = ["info", "reproduce"]


def _foreign_json(foreign: ForeignMetadata | None) -> dict[str, object] | None:
    if foreign is None:
        return None
    return {
        "tool": foreign.tool,
        "source": foreign.source,
        "mapped": dict(foreign.mapped()),
        "unmapped": [{"key": u.key, "value": u.value, "reason": u.reason} for u in foreign.unmapped],
    }


def _print_foreign(out: Console, foreign: ForeignMetadata, image: Path) -> None:
    out.print(f"[bold]Written by {safe_text(foreign.tool)}[/] (read from {safe_text(foreign.source)})")
    table = Table(show_header=False, title="Reproduced by `reproduce`")
    for key, value in foreign.mapped():
        table.add_row(safe_text(key), safe_text(value))
    out.print(table)
    if foreign.unmapped:
        out.print("[bold]Cannot map yet[/] (`reproduce` ignores these, with a warning):")
        for item in foreign.unmapped:
            out.print(f"  - {safe_text(str(item))}")
    command = f"ml-diffusion reproduce {shlex.quote(str(image))} --model MODEL"
    out.print(f"[dim]`{safe_text(command)}` regenerates it.[/]")


def info(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="PNG, JPEG or WebP image.")],
    as_json: JsonOpt = False,
) -> None:
    """Show the generation metadata of IMAGE (ours, A1111/Forge/SD.Next, ComfyUI, InvokeAI, Fooocus)."""

    def action() -> None:
        from ..facade import ImageGenerator

        meta = ImageGenerator().info(image)
        if as_json:
            data = {
                "format": meta.format,
                "infotext": meta.infotext,
                "parameters": dict(meta.parsed.parameters) if meta.parsed else None,
                "plan": meta.plan.to_dict() if meta.plan else None,
                "foreign": _foreign_json(meta.foreign),
                "foreign_error": meta.foreign_error,
            }
            typer.echo(json.dumps(data, indent=2, ensure_ascii=True))  # escapes: no terminal sequences
            return
        out = console()
        if (
            meta.infotext is None
            and meta.plan is None
            and meta.foreign is None
            and meta.foreign_error is None
        ):
            out.print(f"{safe_text(str(image))}: no generation metadata")
            return
        if meta.parsed is not None and meta.parsed.parameters:
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
        elif meta.foreign is not None:
            _print_foreign(out, meta.foreign, image)
        if meta.foreign_error is not None:
            out.print(f"[yellow]{safe_text(meta.foreign_error)}[/]")

    run(ctx, action)


def reproduce(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="An image written by ml-diffusion or another tool.")],
    out: OutOpt = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="For another tool's image: the checkpoint to use (path or catalog name)."
        ),
    ] = None,
    allow_hub: Annotated[
        bool, typer.Option("--allow-hub", help="Let the embedded plan download a Hub model.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate IMAGE from the plan embedded in it, or from the settings another tool recorded."""

    def action() -> None:
        from ..facade import ImageGenerator

        with ImageGenerator() as gen:
            result = gen.reproduce(image, output_dir=out, allow_hub=allow_hub, model=model)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
            return
        for path, image_seed in zip(result.paths, result.seeds, strict=True):
            console().print(f"saved [bold]{escape(str(path))}[/] (seed {image_seed})")

    run(ctx, action)
