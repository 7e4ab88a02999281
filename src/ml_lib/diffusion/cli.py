"""The ``ml-diffusion`` command line (typer + rich). Errors print one line; ``--debug`` shows tracebacks."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_models import models_app
from .cli_options import (
    BatchOpt,
    CfgOpt,
    ClipSkipOpt,
    ConfigOpt,
    ControlOpt,
    ControlTypeOpt,
    FormatOpt,
    FullResOpt,
    HeightOpt,
    InitOpt,
    IPOpt,
    IPWeightOpt,
    JsonOpt,
    LoraOpt,
    MaskBlurOpt,
    MaskOpt,
    ModelOpt,
    NameOpt,
    Negative,
    NoAutoOpt,
    OutOpt,
    PaddingOpt,
    PresetOpt,
    ResizeOpt,
    SamplerOpt,
    ScheduleOpt,
    SeedOpt,
    SizeOpt,
    StepsOpt,
    StrengthOpt,
    WidthOpt,
    build_request,
    control_requests,
    ip_requests,
    lora_requests,
)
from .errors import MlDiffusionError, RequestError

__all__ = ["app", "main"]

DEMO_NOTICE = (
    "No model given or catalogued: using the built-in 64x64 demo model. For real images pass --model PATH, "
    "or set ML_DIFFUSION_MODELS to your model folders and run `ml-diffusion models scan`."
)


def _outside_demo(prompt: str) -> str:
    """The notice's tail naming the prompt's words the demo world does not know ("" when none)."""
    from .demo.words import outside_words

    unknown = outside_words(prompt)
    if not unknown:
        return ""
    shown = ", ".join(unknown[:6]) + (", …" if len(unknown) > 6 else "")
    return f" It knows only its toy shapes, colours, positions and backgrounds, not: {shown}."


app = typer.Typer(
    name="ml-diffusion",
    help="Turn a plain prompt into a good image on your own hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")


class _State:
    debug = False


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logging.")] = False,
) -> None:
    _State.debug = debug
    if not debug:
        # diffusers/transformers log warnings at import time that mean nothing to a CLI user.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _generator() -> Any:
    from .facade import ImageGenerator

    return ImageGenerator()


def _run(action: Any) -> None:
    try:
        action()
    except MlDiffusionError as exc:
        if _State.debug:
            raise
        _console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2 if isinstance(exc, RequestError) else 1) from None


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw (A1111 prompt syntax).")],
    negative: Negative = "",
    model: ModelOpt = None,
    config: ConfigOpt = None,
    size: SizeOpt = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    steps: StepsOpt = None,
    cfg: CfgOpt = None,
    sampler: SamplerOpt = None,
    schedule: ScheduleOpt = None,
    seed: SeedOpt = None,
    batch: BatchOpt = None,
    clip_skip: ClipSkipOpt = None,
    out: OutOpt = None,
    name: NameOpt = None,
    image_format: FormatOpt = None,
    lora: LoraOpt = None,
    init_image: InitOpt = None,
    mask: MaskOpt = None,
    strength: StrengthOpt = None,
    resize_mode: ResizeOpt = None,
    mask_blur: MaskBlurOpt = None,
    inpaint_only_masked: FullResOpt = False,
    inpaint_padding: PaddingOpt = None,
    controlnet: ControlOpt = None,
    control_type: ControlTypeOpt = None,
    ip_adapter: IPOpt = None,
    ip_adapter_weights: IPWeightOpt = "ip-adapter_sd15.safetensors",
    as_json: JsonOpt = False,
    no_auto: NoAutoOpt = False,
    preset: PresetOpt = None,
) -> None:
    """Generate images from PROMPT and save them with A1111-compatible metadata."""

    def action() -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        request = build_request(
            prompt,
            negative_prompt=negative,
            model=model,
            config=config,
            size=size,
            width=width,
            height=height,
            steps=steps,
            cfg_scale=cfg,
            sampler=sampler,
            schedule=schedule,
            seed=seed,
            auto=not no_auto,
            preset=preset or "balanced",
            batch_size=batch,
            clip_skip=clip_skip,
            out=out,
            name_template=name,
            image_format=image_format,
            loras=lora_requests(lora),
            init_image=init_image,
            mask=mask,
            strength=strength,
            resize_mode=resize_mode,
            mask_blur=mask_blur,
            inpaint_full_res=inpaint_only_masked,
            inpaint_padding=inpaint_padding,
            controls=control_requests(controlnet, control_type),
            ip_adapters=ip_requests(ip_adapter, ip_adapter_weights),
        )
        with _generator() as gen:
            plan = gen.plan(request)
            if not model and plan.model.family == "demo":
                _console(stderr=True).print(DEMO_NOTICE + _outside_demo(prompt), highlight=False)
            progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=_console(stderr=True),
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
        console = _console()
        for path, image_seed in zip(result.paths, result.seeds, strict=True):
            console.print(f"saved [bold]{escape(str(path))}[/] (seed {image_seed})")
        t = result.timings
        console.print(
            f"[dim]{escape(plan.model.name)} · {plan.width}x{plan.height} · {plan.steps} steps · {plan.sampler} "
            f"{plan.schedule} · load {t.load:.1f}s, denoise {t.denoise:.1f}s, decode {t.decode:.1f}s[/]"
        )

    _run(action)


@app.command("plan")
def plan_cmd(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    negative: Negative = "",
    model: ModelOpt = None,
    config: ConfigOpt = None,
    size: SizeOpt = None,
    steps: StepsOpt = None,
    cfg: CfgOpt = None,
    sampler: SamplerOpt = None,
    schedule: ScheduleOpt = None,
    seed: SeedOpt = None,
    as_json: JsonOpt = False,
    no_auto: NoAutoOpt = False,
    preset: PresetOpt = None,
) -> None:
    """Show the plan for PROMPT and the reason for every choice, without generating."""

    def action() -> None:
        request = build_request(
            prompt,
            negative_prompt=negative,
            model=model,
            config=config,
            size=size,
            steps=steps,
            cfg_scale=cfg,
            sampler=sampler,
            schedule=schedule,
            seed=seed,
            auto=not no_auto,
            preset=preset or "balanced",
            out=None,
        )
        with _generator() as gen:
            plan = gen.plan(request)
        if as_json:
            typer.echo(plan.to_json(indent=2))
            return
        table = Table(title=escape(f"{plan.model.name} ({plan.model.family})"))
        for column in ("field", "value", "source", "reason"):
            table.add_column(column, overflow="fold")
        for d in plan.decisions:
            table.add_row(d.field, escape(str(d.value)), d.source.value, escape(d.reason))
        _console().print(table)

    _run(action)


@app.command()
def info(
    image: Annotated[Path, typer.Argument(help="PNG, JPEG or WebP image.")],
    as_json: JsonOpt = False,
) -> None:
    """Show the generation metadata of IMAGE (ours or any A1111-compatible tool's)."""

    def action() -> None:
        from .facade import ImageGenerator

        meta = ImageGenerator().info(image)
        if as_json:
            data = {
                "format": meta.format,
                "infotext": meta.infotext,
                "parameters": dict(meta.parsed.parameters) if meta.parsed else None,
                "plan": meta.plan.to_dict() if meta.plan else None,
            }
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        console = _console()
        if meta.infotext is None and meta.plan is None:
            console.print(f"{escape(str(image))}: no generation metadata")
            return
        if meta.parsed is not None:
            console.print(f"[bold]Prompt:[/] {escape(meta.parsed.prompt)}")
            if meta.parsed.negative_prompt:
                console.print(f"[bold]Negative prompt:[/] {escape(meta.parsed.negative_prompt)}")
            table = Table(show_header=False)
            for key, value in dict(meta.parsed.parameters).items():
                table.add_row(escape(key), escape(value))
            console.print(table)
        if meta.plan is not None:
            console.print(
                f"[dim]Embedded ml-diffusion plan: {len(meta.plan.decisions)} decisions; "
                f"`ml-diffusion reproduce {escape(str(image))}` regenerates it.[/]"
            )

    _run(action)


@app.command()
def reproduce(
    image: Annotated[Path, typer.Argument(help="An image written by ml-diffusion.")],
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate IMAGE from the plan embedded in it."""

    def action() -> None:
        with _generator() as gen:
            result = gen.reproduce(image, output_dir=out)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
            return
        for path, image_seed in zip(result.paths, result.seeds, strict=True):
            _console().print(f"saved [bold]{escape(str(path))}[/] (seed {image_seed})")

    _run(action)


def main() -> None:
    """Console-script entry point."""
    app()
