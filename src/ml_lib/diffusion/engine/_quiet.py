"""Silence diffusers' and transformers' own progress bars while the library loads weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_progress_bars"]


@contextmanager
def no_progress_bars() -> Iterator[None]:
    """Disable both libraries' tqdm bars inside the block and restore their previous state after."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    was_on = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was_on[0]:
            dlog.enable_progress_bar()
        if was_on[1]:
            tlog.enable_progress_bar()
