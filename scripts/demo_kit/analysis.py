"""Pixel analysis of demo-world images (numpy + Pillow, no torch): what object, what colour, where, styled.

:func:`analyse` fits the background as a linear ramp to the image border (refitted without the border
pixels an object covers), takes the pixels far from it as the object, and reads its colour (nearest palette
colour of the median pixel of the object's core, edges blended with the background left out), the
background (nearest colour of the fitted border, or the gradient whose two ends it matches), position (nearest
position centre to the bounding-box centre), shape (best IoU of the bounding-box-normalised mask against
each shape's template), a stripe score (diagonal periodicity of luminance inside the object) and an
outline score (the share of pixels around the object that are no blend of its colour and the background).
On an outlined object the 3-pixel outline band is peeled off (a 7-pixel min filter) before colour and shape
are read, since the outline is the style's, not the object's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageFilter

from .world import BACKGROUNDS, COLORS, POSITIONS, SHAPES, shape_mask

__all__ = ["Analysis", "analyse", "mask_iou", "object_mask", "read_background"]

_BORDER = 3
_THRESHOLD = 60.0  # RGB distance from the fitted background that counts as object
_NORM = 24  # side of the normalised mask used for shape matching
_STRIPE_THRESHOLD = 12.0
_OUTLINE_THRESHOLD = 0.1
_PEEL = 7  # min-filter size that removes the world's 3-pixel outline band
_FOREIGN = 60.0  # RGB distance from the object-background blend that marks an outline pixel


@dataclass(frozen=True, slots=True)
class Analysis:
    """What :func:`analyse` read from one image; ``None`` fields when no object was found."""

    mask: np.ndarray
    color: str | None
    background: str
    position: str | None
    shape: str | None
    stripe_score: float
    outline_score: float
    area: int

    @property
    def outlined(self) -> bool:
        """Whether the object shows the outline style (a band that is no object/background blend)."""
        return self.outline_score > _OUTLINE_THRESHOLD

    @property
    def striped(self) -> bool:
        """Whether the object shows the diagonal-stripe style."""
        return self.stripe_score > _STRIPE_THRESHOLD


def _background_fit(image: np.ndarray) -> np.ndarray:
    """A linear colour ramp fitted to the border band, refitted once without the outliers (an object
    touching the border)."""
    h, w, _ = image.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    border = np.zeros((h, w), dtype=bool)
    border[:_BORDER] = border[-_BORDER:] = True
    border[:, :_BORDER] = border[:, -_BORDER:] = True
    design = np.stack([np.ones(h * w, np.float32), yy.ravel() / h, xx.ravel() / w], axis=1)
    pixels = image.reshape(-1, 3)
    keep = border.ravel()
    for _ in range(2):
        coef, *_ = np.linalg.lstsq(design[keep], pixels[keep], rcond=None)
        residual = np.linalg.norm(pixels - design @ coef, axis=1)
        inliers = keep & (residual < _THRESHOLD / 2)
        if inliers.sum() < 0.6 * border.sum():
            break
        keep = inliers
    return (design @ coef).reshape(h, w, 3)


def _nearest(colour: np.ndarray) -> str:
    return min(COLORS, key=lambda c: float(np.sum((np.asarray(COLORS[c], np.float32) - colour) ** 2)))


def _distance(image: np.ndarray) -> np.ndarray:
    pixels = image.astype(np.float32)
    return np.linalg.norm(pixels - _background_fit(pixels), axis=2)


def read_background(image: np.ndarray) -> str:
    """The background of a demo-world image: a colour, or a gradient whose top and bottom it matches."""
    fit = _background_fit(np.asarray(image, np.float32)[..., :3])
    top, bottom = _nearest(fit[1].mean(axis=0)), _nearest(fit[-2].mean(axis=0))
    if top != bottom and f"{top} to {bottom} gradient" in BACKGROUNDS:
        return f"{top} to {bottom} gradient"
    return _nearest(fit.reshape(-1, 3).mean(axis=0))


def _outline_score(pixels: np.ndarray, mask: np.ndarray, color: np.ndarray) -> float:
    """Share of pixels around and in the object that are no blend of its colour and the background.

    Soft edges lie on the segment between object colour and background; a black or white outline does not.
    """
    region = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))) > 0
    p = pixels.astype(np.float32)[region]
    bg = _background_fit(pixels.astype(np.float32))[region]
    axis = color[None, :] - bg
    t = np.clip(np.sum((p - bg) * axis, axis=1) / np.maximum(np.sum(axis * axis, axis=1), 1e-6), 0.0, 1.0)
    off = np.linalg.norm(p - (bg + t[:, None] * axis), axis=1)
    return float(np.mean(off > _FOREIGN))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of ``mask`` (specks and border artefacts dropped)."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    best: list[tuple[int, int]] = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        stack, region = [start], []
        while stack:
            y, x = stack.pop()
            region.append((y, x))
            for ny in (y - 1, y, y + 1):
                for nx in (x - 1, x, x + 1):
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        if len(region) > len(best):
            best = region
    out = np.zeros_like(mask)
    if best:
        ys, xs = zip(*best, strict=True)
        out[list(ys), list(xs)] = True
    return out


def object_mask(image: np.ndarray) -> np.ndarray:
    """The largest region of a uint8 (H, W, 3) image far from its fitted background (bool)."""
    return _largest_component(_distance(image) > _THRESHOLD)


def _normalised(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if len(ys) < 6:
        return None
    crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    img = Image.fromarray(crop.astype(np.uint8) * 255).resize((_NORM, _NORM), Image.Resampling.BILINEAR)
    return np.asarray(img) >= 128


@cache
def _templates() -> dict[str, tuple[np.ndarray, ...]]:
    out: dict[str, tuple[np.ndarray, ...]] = {}
    for shape in SHAPES:
        angles = (-10.0, 0.0, 10.0) if shape in ("square", "triangle", "star") else (0.0,)
        masks = []
        for angle in angles:
            norm = _normalised(shape_mask(shape, (64.0, 64.0), 50.0, angle, size=128) >= 0.5)
            if norm is not None:
                masks.append(norm)
        out[shape] = tuple(masks)
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every row span and column span filled (stripes near the background colour included)."""
    idx = np.arange(mask.shape[1])
    rows = np.zeros_like(mask)
    cols = np.zeros_like(mask)
    for y in np.nonzero(mask.any(axis=1))[0]:
        xs = idx[mask[y]]
        rows[y, xs.min() : xs.max() + 1] = True
    for x in np.nonzero(mask.any(axis=0))[0]:
        ys = np.nonzero(mask[:, x])[0]
        cols[ys.min() : ys.max() + 1, x] = True
    return rows & cols


def _stripe_score(image: np.ndarray, mask: np.ndarray) -> float:
    lum = image.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    region = _filled(mask)
    inner = region.copy()
    for shift in range(1, 5):  # keep pixels whose diagonal neighbours up to 4 px are inside the object
        inner[:-shift, :-shift] &= region[shift:, shift:]
    inner = inner[:-4, :-4]
    if inner.sum() < 8:
        return 0.0
    half = np.abs(lum[:-4, :-4] - lum[2:-2, 2:-2])[inner].mean()  # half a stripe period apart
    full = np.abs(lum[:-4, :-4] - lum[4:, 4:])[inner].mean()  # a full period apart
    return float(half - full)


def analyse(image: np.ndarray | Image.Image) -> Analysis:
    """Read object colour, position, shape and stripe style from a demo-world image (64x64 RGB)."""
    pixels = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)[..., :3]
    distance = _distance(pixels)
    mask = _largest_component(distance > _THRESHOLD)
    area = int(mask.sum())
    if area < 6:
        return Analysis(
            mask, None, read_background(pixels), None, None, stripe_score=0.0, outline_score=0.0, area=area
        )
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    cx = (xs.min() + xs.max() + 1) / 2 * 64 / w
    cy = (ys.min() + ys.max() + 1) / 2 * 64 / h
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    stripes = _stripe_score(pixels, mask)
    median = _object_colour(pixels, mask, stripes > _STRIPE_THRESHOLD)
    outline = _outline_score(pixels, mask, median)
    body = mask
    # an outline band is the style's, not the object's: peel it off before reading colour and shape
    if outline > _OUTLINE_THRESHOLD and stripes <= _STRIPE_THRESHOLD:
        inner = (
            np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(_PEEL))) > 0
        )
        if inner.sum() >= 6:
            body = inner
            median = _object_colour(pixels, body, False)
    return Analysis(
        mask=mask,
        color=_nearest(median),
        background=read_background(pixels),
        position=position,
        shape=_shape(body),
        stripe_score=stripes,
        outline_score=outline,
        area=area,
    )


def _object_colour(pixels: np.ndarray, mask: np.ndarray, striped: bool) -> np.ndarray:
    """The median pixel of the mask's core (a 3-pixel min filter drops the edges blended with the
    background); of its most saturated half when striped (the stripes are near-white)."""
    core = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3))) > 0
    obj = pixels[core if core.sum() >= 6 else mask].astype(np.float32)
    if striped:
        saturation = obj.max(axis=1) - obj.min(axis=1)
        obj = obj[saturation >= np.median(saturation)]
    return np.median(obj, axis=0)


def _shape(mask: np.ndarray) -> str | None:
    norm = _normalised(mask)
    if norm is None:
        return None
    return max(SHAPES, key=lambda s: max(mask_iou(norm, t) for t in _templates()[s]))
