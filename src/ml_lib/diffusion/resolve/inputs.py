"""Input images (init, mask, control, IP-Adapter references) → :class:`ImageRef`, written only when used.

Each image is read and checked at resolve time (decompression-bomb limit, truncated files, odd modes) and
named by its pixel hash, so its place in the content-addressed store is known before anything is
written. A dry-run plan therefore writes nothing: the image is held in memory and stored when a plan
that refers to it runs (:meth:`InputStaging.commit`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import InputImageError
from ..plan import GenerationPlan, ImageRef

if TYPE_CHECKING:
    from PIL import Image

    from ..imaging.store import InputStore

__all__ = ["InputStaging", "plan_images"]

_HELD = 64  # images kept for plans not yet run (the oldest are dropped)


def plan_images(plan: GenerationPlan) -> tuple[ImageRef, ...]:
    """Every input image a plan refers to."""
    refs: list[ImageRef] = []
    if plan.init is not None:
        refs.append(plan.init.image)
        if plan.init.mask is not None:
            refs.append(plan.init.mask)
    refs += [c.image for c in plan.controls]
    refs += [u.image for u in plan.ip_adapters]
    return tuple(refs)


class InputStaging:
    """Checks, hashes and holds input images; writes them into ``store`` on :meth:`commit`.

    ``max_pixels`` (the settings' limit) is checked before any image is decoded.
    """

    def __init__(self, store: InputStore, *, max_pixels: int | None = None) -> None:
        self._store = store
        self._max_pixels = max_pixels
        self._held: OrderedDict[str, Image.Image] = OrderedDict()

    def image(self, source: Any) -> ImageRef:
        """An RGB input image (path, bytes, PIL image or array), checked and staged."""
        from ..imaging.intake import load_image

        return self._stage(load_image(source, max_pixels=self._max_pixels))

    def mask(self, source: Any, size: tuple[int, int] | None) -> ImageRef:
        """A mask: L mode at ``size`` (the init image's) when given, else loaded as an image."""
        from ..imaging.intake import load_image, load_mask

        if size:
            return self._stage(load_mask(source, size, max_pixels=self._max_pixels))
        return self._stage(load_image(source, max_pixels=self._max_pixels))

    def _stage(self, image: Image.Image) -> ImageRef:
        from ..imaging.store import STORABLE_MODES, StoredImage, pixel_sha256

        if image.mode not in STORABLE_MODES:
            raise InputImageError(f"Cannot keep an input image in mode {image.mode}; give RGB or L.")
        sha = pixel_sha256(image)
        path = self._store.path_of(StoredImage(f"{sha}.png", sha, image.width, image.height))
        if not path.exists():
            self._held[sha] = image
            self._held.move_to_end(sha)
            while len(self._held) > _HELD:
                self._held.popitem(last=False)
        return ImageRef(str(path), sha, image.width, image.height)

    def commit(self, refs: Iterable[ImageRef]) -> None:
        """Store the held images among ``refs`` (those already stored, or not held, are left as they are)."""
        for ref in refs:
            image = self._held.pop(ref.sha256, None)
            if image is not None:
                self._store.put(image)
