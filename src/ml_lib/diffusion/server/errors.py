"""Library errors → JSON responses with the right 4xx/5xx and one clear message."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from .. import errors as e

__all__ = ["ApiError", "error_response", "status_for"]

#: Most specific first: the first class an error is an instance of gives its status.
_STATUS: tuple[tuple[type[e.MlDiffusionError], int], ...] = (
    (e.UnknownGenerationError, 404),
    (e.InputImageError, 400),
    (e.RequestError, 422),
    (e.PlanError, 422),
    (e.MetadataError, 400),
    (e.ModelNotFoundError, 404),
    (e.AmbiguousModelError, 409),
    (e.ModelUnreadableError, 422),
    (e.UnsupportedModelError, 422),
    (e.OfflineError, 503),
    (e.GenerationCancelled, 409),
    (e.DiskFullError, 507),
    (e.ConfigError, 500),
)


class ApiError(Exception):
    """An HTTP-level refusal (auth, size, limits) raised before anything is allocated."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def status_for(exc: e.MlDiffusionError) -> int:
    """The HTTP status of a library error (500 for the engine's and the disk's own failures)."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def error_response(status: int, message: str, kind: str) -> JSONResponse:
    """A1111's error body (``error``, ``detail``) plus our ``message`` and ``status``."""
    body = {"error": kind, "detail": message, "message": message, "status": status}
    return JSONResponse(body, status_code=status)


async def library_error(_request: Request, exc: Exception) -> JSONResponse:
    """Exception handler for :class:`MlDiffusionError`."""
    assert isinstance(exc, e.MlDiffusionError)
    return error_response(status_for(exc), str(exc), type(exc).__name__)


async def api_error(_request: Request, exc: Exception) -> JSONResponse:
    """Exception handler for :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, "ApiError")
