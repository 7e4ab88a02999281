"""Small numpy filters shared by masks and preprocessors (Gaussian, Sobel, max filter, luma).

Borders are mirrored without repeating the edge pixel (OpenCV's default ``BORDER_REFLECT_101``), so
results match the ``cv2`` calls A1111 and the ControlNet annotators use, up to rounding.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["gaussian_blur", "gaussian_kernel", "luma", "max_filter", "sobel"]


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps with OpenCV's size rule for masks: ``2 * int(2.5 * sigma + 0.5) + 1``."""
    radius = int(2.5 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return (taps / taps.sum()).astype(np.float32)


def _correlate_axis(arr: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlate a 2-D float array with odd-length ``taps`` along ``axis`` (reflect-101 borders)."""
    radius = len(taps) // 2
    if radius == 0:
        return arr * taps[0]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(arr, pad, mode="reflect")
    n = arr.shape[axis]
    out = np.zeros_like(arr, dtype=np.float32)
    for i, weight in enumerate(taps):
        if weight == 0:
            continue
        window = padded[i : i + n, :] if axis == 0 else padded[:, i : i + n]
        out += weight * window
    return out


def gaussian_blur(arr: np.ndarray, sigma_x: float, sigma_y: float | None = None) -> np.ndarray:
    """Separable Gaussian blur of a 2-D array as float32; a sigma of 0 leaves that axis alone."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    out = arr.astype(np.float32, copy=True)
    if sigma_x > 0:
        out = _correlate_axis(out, gaussian_kernel(sigma_x), axis=1)
    if sigma_y > 0:
        out = _correlate_axis(out, gaussian_kernel(sigma_y), axis=0)
    return out


def sobel(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 Sobel derivatives (unnormalised, as ``cv2.Sobel(ksize=3)``): ``(d/dx, d/dy)``."""
    p = np.pad(arr.astype(np.float32, copy=False), 1, mode="reflect")
    h, w = arr.shape
    # rows above/below and columns left/right of each pixel
    up, mid, down = p[0:h, :], p[1 : h + 1, :], p[2 : h + 2, :]
    smooth_v = up + 2.0 * mid + down  # [1, 2, 1] down the columns
    gx = smooth_v[:, 2 : w + 2] - smooth_v[:, 0:w]
    left, centre, right = p[:, 0:w], p[:, 1 : w + 1], p[:, 2 : w + 2]
    smooth_h = left + 2.0 * centre + right  # [1, 2, 1] along the rows
    gy = smooth_h[2 : h + 2, :] - smooth_h[0:h, :]
    return gx, gy


def max_filter(mask: np.ndarray, size: int) -> np.ndarray:
    """Grey/binary dilation with a ``size`` x ``size`` square (``size`` <= 1 returns a copy)."""
    if size <= 1:
        return mask.copy()
    before = (size - 1) // 2
    after = size - 1 - before
    h, w = mask.shape
    padded = np.pad(mask, ((before, after), (before, after)), mode="edge")
    rows = padded[0:h, :].copy()
    for dy in range(1, size):
        np.maximum(rows, padded[dy : dy + h, :], out=rows)
    out = rows[:, 0:w].copy()
    for dx in range(1, size):
        np.maximum(out, rows[:, dx : dx + w], out=out)
    return out


def luma(image: Image.Image) -> np.ndarray:
    """ITU-R 601 luma of an image (Pillow's ``convert("L")``) as float32 in 0..255."""
    gray = image if image.mode == "L" else image.convert("L")
    return np.asarray(gray, dtype=np.float32)
