"""The ``ml-diffusion`` command line (typer + rich). Errors print one line; ``--debug`` shows tracebacks."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .cli_models import models_app
from .errors import MlDiffusionError, RequestError

__all__ = ["app", "main"]

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


def _parse_size(size: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*", size)
    if not match:
        raise RequestError(f"Size {size!r} is not WIDTHxHEIGHT, e.g. 512x768.")
    return int(match.group(1)), int(match.group(2))


def _lora_requests(values: list[str] | None) -> tuple[Any, ...]:
    from .catalog.lora_resolve import parse_lora_arg
    from .request import LoraRequest

    return tuple(LoraRequest(*parse_lora_arg(v)) for v in values or ())


def _split_unit(text: str, option: str) -> tuple[str, str, float | None]:
    """MODEL:IMAGE[:scale] → (model, image, scale)."""
    head, _, last = text.rpartition(":")
    scale: float | None = None
    try:
        scale = float(last)
        text = head
    except ValueError:
        pass
    model, sep, image = text.partition(":")
    if not sep or not model or not image:
        raise RequestError(f"{option} {text!r} is not MODEL:IMAGE[:scale].")
    return model, image, scale


def _control_requests(values: list[str] | None, types: list[str] | None) -> tuple[Any, ...]:
    from .request import ControlRequest

    values, types = values or [], types or []
    if len(types) not in (0, 1, len(values)):
        raise RequestError("Give one --control-type for all --controlnet units, or one per unit.")
    out = []
    for i, value in enumerate(values):
        model, image, scale = _split_unit(value, "--controlnet")
        kind = types[i] if len(types) == len(values) else (types[0] if types else "none")
        out.append(ControlRequest(model, Path(image), kind, scale))
    return tuple(out)


def _ip_requests(values: list[str] | None, weights: str) -> tuple[Any, ...]:
    from .request import IPAdapterRequest

    out = []
    for value in values or []:
        model, image, scale = _split_unit(value, "--ip-adapter")
        out.append(IPAdapterRequest(model, Path(image), weights, 1.0 if scale is None else scale))
    return tuple(out)


def _generator() -> Any:
    from .facade import ImageGenerator

    return ImageGenerator()


def _request(prompt: str, **kw: Any) -> Any:
    from .request import GenerationRequest

    size = kw.pop("size")
    if size:
        if kw.get("width") or kw.get("height"):
            raise RequestError("Give either --size or --width/--height, not both.")
        kw["width"], kw["height"] = _parse_size(size)
    out = kw.pop("out")
    kw["output_dir"] = str(out) if out else None
    config = kw.pop("config", None)
    kw["config_dir"] = str(config) if config else None
    return GenerationRequest(prompt=prompt, **kw)


Negative = Annotated[str, typer.Option("--negative", "-n", help="Negative prompt.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Diffusers folder, .safetensors checkpoint or Hub id.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Weightless diffusers config folder for an unusual single file."),
]
SizeOpt = Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT, e.g. 512x768.")]
WidthOpt = Annotated[int | None, typer.Option("--width", "-W")]
HeightOpt = Annotated[int | None, typer.Option("--height", "-H")]
StepsOpt = Annotated[int | None, typer.Option("--steps", "-s")]
CfgOpt = Annotated[float | None, typer.Option("--cfg", help="CFG scale.")]
SamplerOpt = Annotated[
    str | None, typer.Option("--sampler", help='A1111 name, e.g. "DPM++ 2M" or "Euler a".')
]
ScheduleOpt = Annotated[str | None, typer.Option("--schedule", help="Automatic, Karras, Exponential, …")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed; image i of a batch uses seed + i.")]
BatchOpt = Annotated[int | None, typer.Option("--batch", "-b", help="Images in one batch.")]
ClipSkipOpt = Annotated[int | None, typer.Option("--clip-skip", help="1 = last CLIP layer (A1111).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="File-name template, e.g. '[date]-[seed]'.")]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lora", help="LoRA file, optionally with weight: PATH[:w] or A1111's PATH:te:unet. Repeatable."
    ),
]
InitOpt = Annotated[Path | None, typer.Option("--init-image", help="Start from this image (img2img).")]
MaskOpt = Annotated[Path | None, typer.Option("--mask", help="Inpaint where this mask is white.")]
StrengthOpt = Annotated[
    float | None, typer.Option("--strength", help="Denoising strength 0..1 (A1111 0.75).")
]
ResizeOpt = Annotated[
    str | None, typer.Option("--resize-mode", help="just_resize, crop_and_resize or resize_and_fill.")
]
MaskBlurOpt = Annotated[int | None, typer.Option("--mask-blur", help="Mask blur radius in pixels (4).")]
FullResOpt = Annotated[
    bool, typer.Option("--inpaint-only-masked", help="Inpaint the masked area at full size.")
]
PaddingOpt = Annotated[
    int | None, typer.Option("--inpaint-padding", help="Padding around the masked area (32).")
]
ControlOpt = Annotated[
    list[str] | None,
    typer.Option("--controlnet", help="MODEL:IMAGE[:scale], repeatable (MODEL: folder or Hub id)."),
]
ControlTypeOpt = Annotated[
    list[str] | None,
    typer.Option("--control-type", help="Preprocessor per --controlnet (canny, scribble, tile, …; none)."),
]
IPOpt = Annotated[
    list[str] | None, typer.Option("--ip-adapter", help="FOLDER:IMAGE[:scale] (h94 layout), repeatable.")
]
IPWeightOpt = Annotated[str, typer.Option("--ip-adapter-weights", help="Weights file inside FOLDER/models.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="png (default), jpeg or webp.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
NoAutoOpt = Annotated[
    bool, typer.Option("--no-auto", help="No automatic checkpoint choice or LoRA recommendation.")
]


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
) -> None:
    """Generate images from PROMPT and save them with A1111-compatible metadata."""

    def action() -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        request = _request(
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
            batch_size=batch,
            clip_skip=clip_skip,
            out=out,
            name_template=name,
            image_format=image_format,
            loras=_lora_requests(lora),
            init_image=init_image,
            mask=mask,
            strength=strength,
            resize_mode=resize_mode,
            mask_blur=mask_blur,
            inpaint_full_res=inpaint_only_masked,
            inpaint_padding=inpaint_padding,
            controls=_control_requests(controlnet, control_type),
            ip_adapters=_ip_requests(ip_adapter, ip_adapter_weights),
        )
        with _generator() as gen:
            plan = gen.plan(request)
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
) -> None:
    """Show the plan for PROMPT and the reason for every choice, without generating."""

    def action() -> None:
        request = _request(
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
