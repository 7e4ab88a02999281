"""The Ray side of a batch: an actor that owns a device and a model pool and executes plans it is sent.

The actor never writes a file: it returns the images as PNG bytes (through Ray's object store) and the
driver saves them with their metadata and records them, so nothing depends on a worker's disk.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["GenerationWorker", "decode_images"]


class GenerationWorker:
    """Executes plans on its own :class:`ImageGenerator` (made remote by ``ray.remote`` at run time)."""

    def __init__(self, settings: Settings, device: str | None = None) -> None:
        from ..facade import ImageGenerator

        self._generator = ImageGenerator(settings, device=device, record=False)

    def pid(self) -> int:
        """The worker's process id (for fault tests and diagnostics)."""
        return os.getpid()

    def run(self, plan_json: str) -> tuple[list[bytes], dict[str, float], str, int]:
        """Execute one plan: the images as PNG bytes, the phase timings, the generation id, the pid."""
        from ..plan import GenerationPlan

        result = self._generator.execute(GenerationPlan.from_json(plan_json), save=False)
        images = []
        for image in result.images:
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            images.append(buf.getvalue())
        t = result.timings
        timings = {"load": t.load, "encode": t.encode, "denoise": t.denoise, "decode": t.decode}
        return images, timings, result.generation_id, os.getpid()


def decode_images(blobs: list[bytes]) -> tuple[Any, ...]:
    """PIL images from the PNG bytes a worker returned."""
    from PIL import Image

    out = []
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()
            out.append(image.copy())
    return tuple(out)
