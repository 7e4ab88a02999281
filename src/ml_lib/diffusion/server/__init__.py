"""The HTTP service (``ml-diffusion serve``): A1111-compatible routes and a native API over one
``ImageGenerator`` whose calls all run on one worker thread, in arrival order.

``app`` (FastAPI app, API key, body limit, CORS, error map) ← ``a1111`` (``/sdapi/v1``), ``native``
(``/api/v1``) ← ``state``, ``limits``, ``worker``, ``errors``. Needs the ``server`` extra.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
