"""``ml-diffusion serve``: the HTTP service (A1111-compatible and native API) on one generation worker."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ConfigError
from ._common import console, run

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (A1111's is 7860).")] = 7860,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="ML_DIFFUSION_API_KEY", help="Every route needs it (X-API-Key or Bearer)."
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Allow browser pages from this origin (repeatable)."),
    ] = None,
    pool_budget: Annotated[
        str | None,
        typer.Option(
            "--pool-budget",
            envvar="ML_DIFFUSION_POOL_BUDGET",
            help="Bytes of models kept loaded between requests: 8GB, or ram=16GB,vram=6GB.",
        ),
    ] = None,
) -> None:
    """Serve the A1111-compatible API (/sdapi/v1) and the native API (/api/v1); Ctrl-C stops."""

    def action() -> None:
        try:
            import uvicorn
        except ImportError as exc:
            raise ConfigError('The server needs its extra: pip install "ml-lib[server]"') from exc
        from ..facade import ImageGenerator
        from ..server import create_app

        if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
            console(stderr=True).print(
                f"warning: serving on {host} without --api-key: anyone who can reach it can use it"
            )
        app = create_app(
            ImageGenerator(pool_budget=pool_budget), api_key=api_key, cors_origins=tuple(cors_origin or ())
        )
        uvicorn.run(app, host=host, port=port, log_level="warning")

    run(ctx, action)
