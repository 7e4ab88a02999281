"""Content-addressed store of input images, so a plan can name its init/mask/control images exactly.

An image is saved once as a lossless PNG named ``<sha256>.png`` in the store folder, where the hash
covers the mode, the size and the raw pixel bytes (not the PNG encoding, so re-encoding does not change
it). Files are written atomically: a hidden temp file in the same folder, fsynced, then ``os.replace``.
:meth:`InputStore.get` decodes the file and checks the hash again, so a reproduced plan never silently
uses another image: a missing, damaged or edited file raises :class:`InputImageChangedError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .._files import atomic_path
from ..errors import (
    InputImageChangedError,
    InputImageError,
)
from ._decode import DEFAULT_MAX_PIXELS, decode_path

__all__ = ["STORABLE_MODES", "InputStore", "StoredImage", "pixel_sha256"]

logger = logging.getLogger(__name__)

#: Modes a PNG holds losslessly and gives back in the same mode.
STORABLE_MODES = frozenset({"1", "L", "LA", "RGB", "RGBA", "I;16"})

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StoredImage:
    """A stored input image: ``path`` relative to the store folder, its pixel hash and its size.

    The fields are those of :class:`ml_lib.diffusion.plan.ImageRef`, in the same order.
    """

    path: str
    sha256: str
    width: int
    height: int


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 of an image's mode, size and raw pixel bytes (independent of any file encoding)."""
    digest = hashlib.sha256(f"ml-diffusion-pixels-v1\0{image.mode}\0{image.width}x{image.height}\0".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class InputStore:
    """Input images under ``root``, one PNG per distinct image, named by :func:`pixel_sha256`."""

    __slots__ = ("max_pixels", "root")

    def __init__(self, root: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.root = Path(root)
        self.max_pixels = max_pixels

    def put(self, image: Image.Image) -> StoredImage:
        """Store ``image`` (deduplicated; an intact existing copy is reused) and return its reference."""
        if image.mode not in STORABLE_MODES:
            raise InputImageError(
                f"Cannot store an image in mode {image.mode}; convert it first (load_image gives RGB, "
                f"load_mask gives L). Storable modes: {', '.join(sorted(STORABLE_MODES))}."
            )
        sha = pixel_sha256(image)
        stored = StoredImage(path=f"{sha}.png", sha256=sha, width=image.width, height=image.height)
        target = self.path_of(stored)
        if target.exists():
            try:
                self.get(stored)
            except InputImageError as exc:
                logger.warning("Stored input %s is damaged (%s); writing it again", target, exc)
            else:
                logger.debug("Input image %s already stored", sha[:12])
                return stored
        self._write(image, target)
        logger.info("Stored input image %s", target)
        return stored

    def get(self, ref: StoredImage | str | os.PathLike[str], sha256: str | None = None) -> Image.Image:
        """The stored image, after checking its pixels still hash to ``sha256``.

        ``ref`` is a :class:`StoredImage` (its hash is used unless ``sha256`` is given too, which must then
        agree) or a path, relative to the store folder or absolute, with ``sha256`` required.
        """
        expected = _expected_hash(ref, sha256)
        path = self.path_of(ref)
        if not path.is_file():
            raise InputImageChangedError(
                f"The stored input image {path} is missing (expected sha256 {expected[:12]}…); restore it, "
                "or run again with the original image."
            )
        try:
            image = decode_path(path, self.max_pixels)
        except InputImageError as exc:
            raise InputImageChangedError(
                f"The stored input image {path} can no longer be read ({exc}); restore it, or run again "
                "with the original image."
            ) from exc
        actual = pixel_sha256(image)
        if actual != expected:
            raise InputImageChangedError(
                f"The stored input image {path} has changed: its pixels hash to {actual[:12]}…, not "
                f"{expected[:12]}…; restore the original file, or run again with the original image."
            )
        return image

    def path_of(self, ref: StoredImage | str | os.PathLike[str]) -> Path:
        """Where a reference points: ``StoredImage.path`` and relative paths are under ``root``."""
        raw = Path(ref.path if isinstance(ref, StoredImage) else ref)
        return raw if raw.is_absolute() else self.root / raw

    def _write(self, image: Image.Image, target: Path) -> None:
        fix = "set ML_DIFFUSION_HOME to another folder"
        with atomic_path(target, what="store an input image", fix=fix) as temp:
            image.save(temp, format="PNG")


def _expected_hash(ref: StoredImage | str | os.PathLike[str], sha256: str | None) -> str:
    if isinstance(ref, StoredImage):
        if sha256 is not None and sha256 != ref.sha256:
            raise InputImageError(f"Two different hashes given for {ref.path}: {ref.sha256} and {sha256}.")
        sha256 = ref.sha256
    if sha256 is None:
        raise InputImageError(f"No sha256 given for the stored input image {os.fspath(ref)!r}.")
    if not _HEX64.fullmatch(sha256):
        raise InputImageError(f"{sha256!r} is not a sha256 (64 lower-case hex digits).")
    return sha256
