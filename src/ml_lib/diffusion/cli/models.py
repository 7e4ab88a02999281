"""``ml-diffusion models …``: scan folders into the catalog, list, show, hash, convert pickles."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..errors import RequestError
from ._common import console as _console
from ._common import echo_json as _json
from ._common import run as _run
from ._common import safe_text

if TYPE_CHECKING:
    from ..catalog.catalog import Catalog
    from ..catalog.records import ModelRecord

__all__ = ["models_app"]

log = logging.getLogger(__name__)

models_app = typer.Typer(
    name="models",
    help="The model catalog: what is on disk, from headers alone (scan, list, show, hash, convert).",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RootOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--root", "-r", help="Model folder, web-UI/ComfyUI folder or extra_model_paths.yaml. Repeatable."
    ),
]


def _catalog(roots: list[Path] | None = None) -> Catalog:
    from ..catalog.catalog import Catalog
    from ..db import connect
    from ..settings import Settings

    settings = Settings.from_env()
    return Catalog(connect(settings.db_path), [*settings.model_roots, *(roots or ())])


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _progress(disable: bool, *columns: Any) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        *columns,
        TimeElapsedColumn(),
        console=_console(stderr=True),
        disable=disable,
        transient=True,
    )


def _hash_with_bar(
    catalog: Catalog, records: tuple[ModelRecord, ...], quiet: bool
) -> tuple[ModelRecord, ...]:
    from rich.progress import DownloadColumn, TransferSpeedColumn

    total = sum(r.size for r in records)
    with _progress(quiet or total < 64 * 2**20, DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task("hashing", total=total)
        return catalog.hash(records, on_bytes=lambda n: bar.advance(task, n))


@models_app.command()
def scan(
    ctx: typer.Context,
    root: RootOpt = None,
    with_hashes: Annotated[
        bool, typer.Option("--hash", help="Also hash every file (slow on big files).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Walk the model roots (ML_DIFFUSION_MODELS, or --root) and record what each file is."""

    def action() -> None:
        from rich.progress import MofNCompleteColumn

        catalog = _catalog()
        with _progress(as_json, MofNCompleteColumn()) as bar:
            task = bar.add_task("probing", total=None)
            report = catalog.scan(
                root or None, on_progress=lambda p: bar.update(task, completed=p.done, total=p.total)
            )
        if with_hashes:
            _hash_with_bar(catalog, catalog.find(), as_json)
        if as_json:
            _json(report)
            return
        console = _console()
        console.print(
            f"{report.files} models in {len(report.folders)} folders: {report.new} new, {report.changed} changed, "
            f"{report.unchanged} unchanged, {len(report.moved)} moved, {report.missing} missing, "
            f"{report.broken} broken, {report.unsafe} unsafe (pickle) · {report.seconds:.1f}s"
        )
        for move in report.moved:
            console.print(f"  moved: {safe_text(move.old)} → {safe_text(move.new)} ({move.evidence})")
        for problem in report.problems:
            console.print(f"  [yellow]skipped[/] {safe_text(problem.path)}: {safe_text(problem.reason)}")
        if not (root or catalog.roots):
            console.print(
                "Only the built-in demo models were scanned: set ML_DIFFUSION_MODELS to your model folders "
                "(A1111, ComfyUI, diffusers or the Hugging Face cache) or pass --root DIR."
            )

    _run(ctx, action)


@models_app.command("list")
def list_cmd(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Option("--kind", "-k", help="checkpoint, lora, vae, controlnet …")
    ] = None,
    family: Annotated[str | None, typer.Option("--family", "-f", help="sd1, sd2, sdxl, sd3, flux …")] = None,
    text: Annotated[str | None, typer.Option("--text", "-q", help="Words in names, triggers, tags.")] = None,
    include_missing: Annotated[bool, typer.Option("--missing", help="Include vanished files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List catalogued models."""

    def action() -> None:
        from ..catalog.builtins import BUILTIN_LAYOUT
        from ..catalog.records import ModelKind, Status

        try:
            chosen_kind = ModelKind(kind) if kind else None
        except ValueError:
            known = ", ".join(k.value for k in ModelKind)
            raise RequestError(f"Unknown kind {kind!r}; choose one of {known}.") from None
        statuses = tuple(Status) if include_missing else (Status.OK, Status.BROKEN, Status.UNSAFE)
        records = _catalog().find(kind=chosen_kind, family=family, text=text, statuses=statuses)
        if as_json:
            _json(records)
            return
        if not records:
            _console().print("No models match. Run `ml-diffusion models scan --root DIR` to add a folder.")
            return
        table = Table()
        for column in ("name", "kind", "family", "status", "size", "hash"):
            table.add_column(column, overflow="fold")
        for r in records:
            kind_text = r.kind.value + (f" ({r.info.variant})" if r.info.variant else "")
            fam = r.family.value + (f" · {r.info.derivative}" if r.info.derivative else "")
            status = r.status.value if r.status.value == "ok" else f"[yellow]{r.status.value}[/]"
            name = safe_text(r.rel_name) + (" [dim](built-in)[/]" if r.layout == BUILTIN_LAYOUT else "")
            table.add_row(name, safe_text(kind_text), safe_text(fam), status, _size(r.weights_bytes),
                          r.short_hash or "")  # fmt: skip
        _console().print(table)

    _run(ctx, action)


def _show_rows(r: ModelRecord) -> list[tuple[str, str]]:
    rows = [
        ("path", r.path),
        ("kind", f"{r.kind.value} {r.info.variant}".strip()),
        ("family", r.family.value),
    ]
    rows += [("prediction", r.info.prediction_type.value), ("status", r.status.value), ("why", r.info.reason)]
    if r.info.derivative:
        rows.append(("derivative", r.info.derivative))
    rows += [("size", _size(r.weights_bytes)), ("layout", f"{r.layout} ({r.root})")]
    for label, value in (
        ("sha256", r.hashes.sha256),
        ("AutoV2", r.hashes.autov2),
        ("addnet", r.hashes.addnet_short),
    ):
        if value:
            rows.append((label, value))
    lora = r.info.lora
    if lora is not None:
        rows.append(("network", f"{lora.network} ({lora.style}), rank {lora.rank}, alpha {lora.alpha}"))
        rows.append(("trains", ", ".join(lora.parts)))
        for label, value in (("base model", lora.base_model_version), ("trained on", lora.training_model),
                             ("module", lora.network_module), ("output name", lora.output_name)):  # fmt: skip
            if value:
                rows.append((label, value))
        if lora.resolution:
            rows.append(("resolution", f"{lora.resolution[0]}x{lora.resolution[1]}"))
        if lora.top_tags:
            rows.append(("top tags", ", ".join(f"{t.tag} ({t.count})" for t in lora.top_tags)))
        if lora.speed:
            s = lora.speed
            rows.append(
                ("speed LoRA", f"{s.name}: {s.steps} steps, CFG {s.cfg}, {s.sampler or '-'} ({s.reason})")
            )
    if r.trigger_words:
        rows.append(("trigger words", ", ".join(r.trigger_words)))
    sc = r.sidecar
    if sc is not None:
        for label, shown in (("description", sc.description), ("preferred weight", sc.preferred_weight),
                             ("negative text", sc.negative_text), ("notes", sc.notes),
                             ("Civitai", " · ".join(x for x in (sc.civitai_name, sc.civitai_version,
                                                                 sc.base_model) if x)),
                             ("tags", ", ".join(sc.tags)), ("nsfw", sc.nsfw), ("previews", ", ".join(sc.previews)),
                             ("sidecar problems", "; ".join(sc.problems))):  # fmt: skip
            if shown not in (None, ""):
                rows.append((label, str(shown)))
    return rows


@models_app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Name (A1111 rules), hash or path.")],
    as_json: JsonOpt = False,
) -> None:
    """Everything the catalog knows about one model."""

    def action() -> None:
        record = _catalog().get(ref)
        if as_json:
            _json(record)
            return
        table = Table(show_header=False, title=safe_text(record.rel_name))
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for label, value in _show_rows(record):
            table.add_row(label, safe_text(value))
        _console().print(table)

    _run(ctx, action)


@models_app.command("hash")
def hash_cmd(
    ctx: typer.Context,
    refs: Annotated[
        list[str] | None, typer.Argument(help="Names, hashes or paths (default: every model).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compute sha256 / AutoV2 (and the addnet hash of LoRAs) once; later calls read the cache."""

    def action() -> None:
        catalog = _catalog()
        records = tuple(catalog.get(r) for r in refs) if refs else catalog.find()
        hashed = _hash_with_bar(catalog, records, as_json)
        if as_json:
            _json(hashed)
            return
        table = Table()
        for column in ("name", "AutoV2", "addnet", "sha256"):
            table.add_column(column, overflow="fold")
        for r in hashed:
            table.add_row(
                safe_text(r.rel_name),
                r.hashes.autov2 or "",
                r.hashes.addnet_short or "",
                r.hashes.sha256 or "",
            )
        _console().print(table)

    _run(ctx, action)


@models_app.command()
def convert(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="A pickle model (.ckpt .pt .pth .bin): name, hash or path.")],
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="I trust this file: load it with torch (weights only).")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output .safetensors path.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a .safetensors copy of a pickle checkpoint (needs --allow-pickle; weights only)."""

    def action() -> None:
        path = Path(ref).expanduser()
        source = path if path.is_file() else Path(_catalog().get(ref).path)
        from ..engine.convert import convert_to_safetensors

        result = convert_to_safetensors(source, out, allow_pickle=allow_pickle)
        if as_json:
            _json(result)
            return
        _console().print(
            f"wrote [bold]{safe_text(str(result.path))}[/] ({result.tensors} tensors); "
            "`ml-diffusion models scan` catalogues it."
        )

    _run(ctx, action)
