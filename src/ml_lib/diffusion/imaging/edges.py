"""Edge maps for ControlNet, in numpy: Canny, soft edges and scribbles. White lines on black, RGB.

They follow what A1111's ControlNet extension feeds the canny / softedge / scribble models, without
OpenCV or downloaded weights. Deterministic: the same image and parameters give the same pixels.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from ..errors import RequestError
from ._filters import gaussian_blur, luma, max_filter, sobel

__all__ = ["canny", "scribble", "softedge"]

logger = logging.getLogger(__name__)

_TAN_22_5 = 0.41421356
_TAN_67_5 = 2.41421356


def _to_rgb_image(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(gray.astype(np.uint8)).convert("RGB")


def _edge_mask(gray: np.ndarray, low: float, high: float, sigma: float) -> np.ndarray:
    """Boolean Canny edges of a 0..255 float array."""
    if sigma > 0:
        gray = gaussian_blur(gray, sigma)
    gx, gy = sobel(gray)
    # Rounded so that float noise cannot break the tie between the two pixels of a symmetric step.
    magnitude = np.round(np.hypot(gx, gy, dtype=np.float64), 2)
    thin = _non_maximum_suppression(magnitude, gx, gy)
    return _hysteresis(thin > low, thin > high)


def _non_maximum_suppression(magnitude: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Keep only pixels that are the local maximum across the edge (4 quantised directions).

    A pixel must be > its neighbour on one side and >= on the other, so a two-pixel plateau (a step
    edge between pixels) keeps exactly one line.
    """
    h, w = magnitude.shape
    p = np.pad(magnitude, 1)
    ax, ay = np.abs(gx), np.abs(gy)
    horizontal = ay <= _TAN_22_5 * ax  # gradient along x: compare left / right
    vertical = ay > _TAN_67_5 * ax  # gradient along y: compare up / down
    diagonal = ~(horizontal | vertical)
    same_sign = (gx * gy) > 0  # gradient towards down-right / up-left (y grows downwards)

    def shifted(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    before = np.where(horizontal, shifted(0, -1), shifted(-1, 0))
    after = np.where(horizontal, shifted(0, 1), shifted(1, 0))
    before = np.where(diagonal & same_sign, shifted(-1, -1), before)
    after = np.where(diagonal & same_sign, shifted(1, 1), after)
    before = np.where(diagonal & ~same_sign, shifted(-1, 1), before)
    after = np.where(diagonal & ~same_sign, shifted(1, -1), after)
    keep = (magnitude > before) & (magnitude >= after)
    return np.where(keep, magnitude, 0.0)


def _hysteresis(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Strong pixels plus every weak pixel 8-connected to one (a flood fill from the strong pixels)."""
    h, w = weak.shape
    wp = w + 2
    candidate = np.pad(weak | strong, 1).ravel()
    keep = np.pad(strong, 1).ravel().copy()
    offsets = (-wp - 1, -wp, -wp + 1, -1, 1, wp - 1, wp, wp + 1)
    # Seeds: weak pixels touching a strong one (one vectorised dilation), then a flood fill from them.
    grown = np.zeros_like(keep)
    for off in offsets:
        grown |= np.roll(keep, off)
    stack: list[int] = np.flatnonzero(grown & candidate & ~keep).tolist()
    keep[stack] = True
    while stack:
        i = stack.pop()
        for off in offsets:
            j = i + off
            if candidate[j] and not keep[j]:
                keep[j] = True
                stack.append(j)
    return keep.reshape(h + 2, wp)[1:-1, 1:-1]


def canny(image: Image.Image, low: float = 100, high: float = 200, *, sigma: float = 1.0) -> Image.Image:
    """Canny edges: Gaussian smoothing (``sigma``, 0 = none), 3x3 Sobel, non-maximum suppression and
    hysteresis between ``low`` and ``high``.

    Thresholds are on the L2 Sobel magnitude of the 0..255 luma, like ``cv2.Canny(img, low, high,
    L2gradient=True)``, so A1111's defaults 100 / 200 mean the same here.
    """
    if not 0 <= low <= high:
        raise RequestError(f"Canny thresholds need 0 <= low <= high, got low={low}, high={high}.")
    if sigma < 0:
        raise RequestError(f"Canny sigma must be >= 0, got {sigma}.")
    edges = _edge_mask(luma(image), low, high, sigma)
    return _to_rgb_image(edges * 255)


def softedge(image: Image.Image, *, sigma: float = 1.5) -> Image.Image:
    """A soft edge map: the Sobel gradient magnitude of the smoothed luma, scaled so its maximum is 255.

    A weightless stand-in for HED/PiDiNet soft edges; a flat image gives black.
    """
    if sigma < 0:
        raise RequestError(f"Soft-edge sigma must be >= 0, got {sigma}.")
    gray = luma(image)
    if sigma > 0:
        gray = gaussian_blur(gray, sigma)
    gx, gy = sobel(gray)
    magnitude = np.hypot(gx, gy)
    peak = float(magnitude.max())
    if peak <= 1e-6:
        return _to_rgb_image(np.zeros_like(magnitude))
    return _to_rgb_image(np.rint(magnitude * (255.0 / peak)))


def scribble(
    image: Image.Image, *, method: str = "xdog", threshold: float = 32, thickness: int = 3
) -> Image.Image:
    """Thick binary lines for the scribble model.

    ``method="xdog"`` (A1111's ``scribble_xdog``): a pixel is a line where the image is darker than its
    surroundings by more than ``threshold / 2`` (difference of Gaussians, sigma 0.5 and 5). ``"canny"``:
    Canny edges (100 / 200). The lines are then thickened with a ``thickness`` x ``thickness`` square.
    """
    if thickness < 1:
        raise RequestError(f"Scribble thickness must be >= 1, got {thickness}.")
    if method == "xdog":
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
        dogs = [gaussian_blur(rgb[:, :, c], 5.0) - gaussian_blur(rgb[:, :, c], 0.5) for c in range(3)]
        darker = np.min(np.stack(dogs), axis=0)  # A1111: 255 - dog with dog = 255 - min(g2 - g1)
        lines = 2.0 * np.clip(darker, 0, 255) > threshold
    elif method == "canny":
        lines = _edge_mask(luma(image), 100, 200, 1.0)
    else:
        raise RequestError(f"Unknown scribble method {method!r}; use 'xdog' or 'canny'.")
    thick = max_filter(lines.astype(np.uint8), thickness)
    return _to_rgb_image(thick * 255)
