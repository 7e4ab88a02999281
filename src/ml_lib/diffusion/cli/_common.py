"""What every ``ml-diffusion`` verb shares: the console, one-line errors, JSON output, text from files."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import MlDiffusionError, RequestError

__all__ = ["console", "echo_json", "run", "safe_text"]


def console(stderr: bool = False) -> Console:
    """A console that prints text as given: no highlighting, no ``:emoji:`` codes (``<lora:x:1>`` stays)."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


def safe_text(text: str) -> str:
    """Text that came from a file, safe to print: control and bidi characters removed, markup escaped."""
    return escape("".join(c for c in text if c in "\t\n" or unicodedata.category(c) not in ("Cc", "Cf")))


def run(ctx: typer.Context, action: Callable[[], None]) -> None:
    """Run a verb: a library error is one red line (exit 2 for bad input, 1 otherwise) unless ``--debug``
    (read from the root command of ``ctx``); Ctrl-C stops with exit code 130 and one line; any other
    exception (a bug) is one line naming it, exit 1, and its traceback with ``--debug``."""
    debug = bool(ctx.find_root().params.get("debug"))
    try:
        action()
    except MlDiffusionError as exc:
        if debug:
            raise
        console(stderr=True).print(f"[bold red]error:[/] {safe_text(str(exc))}")  # may quote a file
        raise typer.Exit(2 if isinstance(exc, RequestError) else 1) from None
    except KeyboardInterrupt:
        if debug:
            raise
        console(stderr=True).print("cancelled; files already written are complete, nothing else was written")
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug, not bad input: one line, the traceback with --debug
        if debug:
            raise
        what = f"{type(exc).__name__}: {exc}".splitlines()[0]
        console(stderr=True).print(
            f"[bold red]internal error:[/] {safe_text(what)}. This is a bug in ml-diffusion; run the same "
            "command with --debug (ml-diffusion --debug ...) for the traceback, and report it."
        )
        raise typer.Exit(1) from None


def echo_json(value: Any) -> None:
    """Print a record tree (dataclasses, enums, paths) as indented JSON."""
    from .._codec import to_jsonable

    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))
