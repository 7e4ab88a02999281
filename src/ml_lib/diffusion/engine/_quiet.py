"""Quiet third-party noise where it arises, and only that: progress bars while weights load, transformers'
notice that it falls back to PIL image processors without torchvision (our supported setup), and torchsde's
float-rounding warnings about Brownian interval ends on every "DPM++ SDE" run."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["no_progress_bars", "no_sde_rounding_warnings", "no_torchvision_fallback_notice"]

_FALLBACK = re.compile(
    r"`\w+ImageProcessor` requires torchvision \(not installed\); falling back to `\w+Pil`"
)


class _DropFallbackNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _FALLBACK.match(record.getMessage())


@contextmanager
def no_torchvision_fallback_notice() -> Iterator[None]:
    """Drop transformers' "`XImageProcessor` requires torchvision …; falling back to `XImageProcessorPil`"
    notice inside the block (the PIL processors are what we use); every other message still shows."""
    logger = logging.getLogger("transformers.utils.import_utils")
    drop = _DropFallbackNotice()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


@contextmanager
def no_sde_rounding_warnings() -> Iterator[None]:
    """Ignore torchsde's "Should have ta>=t0 / tb<=t1 but got …" inside the block: diffusers' Brownian tree
    noise sampler queries interval ends that differ from the tree's by float rounding (harmless)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Should have (ta>=t0|tb<=t1) but got", category=UserWarning
        )
        yield


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
