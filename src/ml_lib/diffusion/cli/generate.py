"""``ml-diffusion generate`` and ``ml-diffusion plan``: one option list, one request, images or the plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ..request import GenerationRequest
from ._common import console, run, safe_text
from .options import JsonOpt, VerboseOpt, request_command
from .whatif import DeviceOpt, RamOpt, VramOpt

__all__ = ["DEMO_NOTICE", "generate", "plan_cmd"]

DEMO_NOTICE = (
    "No model given or catalogued: using the built-in 64x64 demo model. For real images pass --model PATH, "
    "or set ML_DIFFUSION_MODELS to your model folders and run `ml-diffusion models scan`."
)


def _outside_demo(prompt: str) -> str:
    """The notice's tail naming the prompt's words the demo world does not know ("" when none)."""
    from ..demo.words import outside_words

    unknown = outside_words(prompt)
    if not unknown:
        return ""
    shown = ", ".join(unknown[:6]) + (", …" if len(unknown) > 6 else "")
    return f" It knows only its toy shapes, colours, positions and backgrounds, not: {shown}."


def _generator(device: str | None = None) -> Any:
    from ..facade import ImageGenerator

    return ImageGenerator(device=device)


@request_command
def generate(
    ctx: typer.Context,
    make_request: Callable[[], GenerationRequest],
    prompt: str,
    *,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    device: DeviceOpt = None,
) -> None:
    """Generate images from PROMPT and save them with A1111-compatible metadata."""

    def action() -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        request = make_request()
        with _generator(device) as gen:
            plan = gen.plan(request)
            gen.release_analyzer()  # one plan per process: its ~125 MB are the model's now
            if not request.model and plan.model.family == "demo":
                console(stderr=True).print(escape(DEMO_NOTICE + _outside_demo(prompt)))
            progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console(stderr=True),
                disable=as_json,
                transient=True,
            )
            with progress:
                task = progress.add_task("denoising", total=plan.steps)
                result = gen.execute(
                    plan, on_step=lambda s: progress.update(task, completed=s.step, total=s.total)
                )
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
            return
        out = console()
        for path, image_seed in zip(result.paths, result.seeds, strict=True):
            out.print(f"saved [bold]{escape(str(path))}[/] (seed {image_seed})")
        t = result.timings
        out.print(
            f"[dim]{safe_text(plan.model.name)} · {plan.width}x{plan.height} · {plan.steps} steps · {plan.sampler} "
            f"{plan.schedule} · load {t.load:.1f}s, denoise {t.denoise:.1f}s, decode {t.decode:.1f}s[/]"
        )
        if verbose:
            from .report import verbose_lines

            for line in verbose_lines(result):
                out.print(f"[dim]{line}[/]")

    run(ctx, action)


@request_command
def plan_cmd(
    ctx: typer.Context,
    make_request: Callable[[], GenerationRequest],
    prompt: str,
    *,
    as_json: JsonOpt = False,
    device: DeviceOpt = None,
    vram: VramOpt = None,
    ram: RamOpt = None,
) -> None:
    """Show the plan for PROMPT and the reason for every choice, without generating or writing anything.

    With --vram or --ram (and --device), plan as if on that hardware: nothing is detected or loaded."""

    def action() -> None:
        from .whatif import memory_summary, whatif_hardware

        request = make_request()
        hardware = whatif_hardware(device, vram, ram)
        with _generator(None if hardware is not None else device) as gen:
            plan = gen.plan(request, hardware=hardware)
        if as_json:
            typer.echo(plan.to_json(indent=2))
            return
        table = Table(title=safe_text(f"{plan.model.name} ({plan.model.family})"))
        for column in ("field", "value", "source", "reason"):
            table.add_column(column, overflow="fold")
        for d in plan.decisions:
            table.add_row(d.field, safe_text(str(d.value)), d.source.value, safe_text(d.reason))
        console().print(table)
        console().print(memory_summary(plan))

    run(ctx, action)
