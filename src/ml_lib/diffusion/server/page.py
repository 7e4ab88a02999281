"""The gallery page at ``/``: one static HTML file with a small script and a style sheet (no build step),
shipped in the package (``server/static``) and served from it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "add_page"]

STATIC = Path(__file__).with_name("static")


def add_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/static``."""
    router = APIRouter(tags=["page"])

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
