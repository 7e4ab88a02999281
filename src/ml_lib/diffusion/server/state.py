"""What every route shares: the worker (and its generator), the limits, the model chosen by /options."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from .limits import ServerLimits
from .worker import Worker

__all__ = ["ServerState", "state"]


@dataclass(slots=True)
class ServerState:
    """The service's state; ``model`` is the checkpoint ``POST /options`` chose (None: automatic)."""

    worker: Worker
    limits: ServerLimits
    model: str | None = None


def state(request: Request) -> ServerState:
    """The state of the app serving ``request``."""
    value = request.app.state.ml
    assert isinstance(value, ServerState)
    return value
