"""The ``ml-diffusion`` command line (typer + rich): one module per verb group, no cycles.

``_common`` (console, one-line errors) ← ``options`` (the shared request options) ← ``generate``
(generate, plan), ``images`` (info, reproduce), ``models`` (the catalog), ``history`` (rate, history,
stats), ``learning`` (show, reset, export, import), ``serve`` (the HTTP service), ``batch`` (JSONL jobs);
this module assembles the app.
Errors print one line; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from .batch import batch
from .generate import generate, plan_cmd
from .history import history, rate, stats
from .images import info, reproduce
from .learning import learning_app
from .models import models_app
from .serve import serve

__all__ = ["app", "main"]


def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logging.")] = False,
) -> None:
    if not debug:
        # diffusers/transformers log warnings at import time that mean nothing to a CLI user.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def build_app() -> typer.Typer:
    """The ``ml-diffusion`` application."""
    app = typer.Typer(
        name="ml-diffusion",
        help="Turn a plain prompt into a good image on your own hardware.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    app.command("generate")(generate)
    app.command("plan")(plan_cmd)
    app.command("info")(info)
    app.command("reproduce")(reproduce)
    app.add_typer(models_app, name="models")
    app.command("rate")(rate)
    app.command("history")(history)
    app.command("stats")(stats)
    app.add_typer(learning_app, name="learning")
    app.command("serve")(serve)
    app.command("batch")(batch)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()


app = build_app()
