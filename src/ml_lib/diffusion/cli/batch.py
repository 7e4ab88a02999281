"""``ml-diffusion batch JOB.jsonl --out DIR``: a resumable run of many requests, here or on Ray."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from ._common import console, run, safe_text

__all__ = ["batch"]


def batch(
    ctx: typer.Context,
    job: Annotated[Path, typer.Argument(help='JSONL: one request per line, {"defaults": {...}} lines.')],
    out: Annotated[Path, typer.Option("--out", help="Folder for the images and manifest.jsonl.")],
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Generate each item N times.")] = 1,
    seed_start: Annotated[
        int | None, typer.Option("--seed-start", help="Seed of item n is SEED+n (items without a seed).")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option("--ray", help='Run on Ray: "local" (a Ray on this machine), "auto" or an address.'),
    ] = None,
    actors: Annotated[
        int | None, typer.Option("--actors", min=1, help="Ray actors (default: one per GPU or per CPU).")
    ] = None,
    actor_cpus: Annotated[int, typer.Option("--actor-cpus", min=1, help="CPU threads per Ray actor.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Generate every request of JOB into --out; re-running the same command resumes where it stopped."""

    def action() -> None:
        from ..batch import RayOptions, load_job
        from ..facade import ImageGenerator
        from ..result import CancelToken

        items = load_job(job, repeat=repeat, seed_start=seed_start)  # a bad job fails before anything
        stop = CancelToken()
        options = RayOptions(ray, actors, actor_cpus) if ray else None
        with ImageGenerator() as gen, _Progress(as_json) as progress, _StopOnInterrupt(stop):
            report = gen.batch(items, out, ray=options, on_event=progress, stop=stop)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        out_console = console()
        out_console.print(
            f"{report.done} done, {report.skipped} done before, {report.failed} failed of {report.total}; "
            f"{report.model_loads} model load(s) on {report.workers} worker(s) in {report.seconds:.1f} s"
        )
        if report.stopped:
            out_console.print("stopped: run the same command again to resume")
        if report.failed and not report.stopped:
            raise typer.Exit(1)
        if report.stopped:
            raise typer.Exit(130)

    run(ctx, action)


class _Progress:
    """A rich progress bar with ETA fed by batch events; failures are printed as they happen."""

    def __init__(self, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console(stderr=True),
            disable=quiet,
        )
        self._task = self._bar.add_task("batch", total=None)
        self._quiet = quiet

    def __enter__(self) -> _Progress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def __call__(self, event: Any) -> None:
        if event.kind == "queued":
            self._bar.update(self._task, total=event.count)
        elif event.kind in ("done", "failed"):
            self._bar.advance(self._task)
        if event.kind == "failed" and not self._quiet:
            where = f"item {event.item.index} (line {event.item.line})" if event.item else "an item"
            self._bar.console.print(f"[red]failed:[/] {where}: {safe_text(event.message)}")


class _StopOnInterrupt:
    """The first Ctrl-C stops the run after the current step; a second one interrupts at once."""

    def __init__(self, stop: Any) -> None:
        self._stop = stop
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.cancelled:
            raise KeyboardInterrupt
        console(stderr=True).print("stopping after the current step (Ctrl-C again to interrupt now)")
        self._stop.cancel()

    def __enter__(self) -> None:
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)
