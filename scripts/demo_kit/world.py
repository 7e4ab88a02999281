"""A procedural world of one coloured shape on a plain or gradient background (numpy + Pillow, no torch).

A :class:`Scene` (shape, colour, size, position, background, style, jitter) renders deterministically to
a 64x64 RGB image, its object mask and several natural-language captions. :func:`sample_scene` draws a
scene from a seed; combinations of (shape, colour, position) listed by :func:`is_held_out` never occur in
the training split and make the evaluation split. Two styles carry a trigger word: ``"striped"``
(:data:`STYLE_TRIGGER`, diagonal 8-pixel stripes: part of the VAE's data, finer than its 4x latent grid
reproduces) and ``"outline"`` (:data:`OUTLINE_TRIGGER`, a thick outline in the complementary palette
colour, like a sticker: the style-LoRA data, drawn in colours the VAE reproduces). :func:`control_image` /
:func:`edge_map` give ControlNet conditions.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "BACKGROUNDS",
    "COLORS",
    "IMAGE_SIZE",
    "OUTLINE_INK",
    "OUTLINE_TRIGGER",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "STYLE_TRIGGER",
    "Rendered",
    "Scene",
    "Split",
    "captions",
    "control_image",
    "edge_map",
    "is_held_out",
    "render",
    "sample_scene",
    "shape_mask",
    "vocabulary",
]

IMAGE_SIZE = 64
_SS = 4  # supersampling factor for anti-aliased drawing

SHAPES = ("circle", "square", "triangle", "star", "ring")
#: Object colours: saturated, far from every background.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 60),
    "cyan": (30, 200, 210),
    "blue": (30, 70, 220),
    "purple": (140, 50, 190),
    "pink": (240, 110, 180),
}
#: Radius (pixels at 64x64) of the circle circumscribing the object.
SIZES: dict[str, float] = {"small": 7.5, "big": 12.5}
#: Object centre (x, y) for each position word.
POSITIONS: dict[str, tuple[int, int]] = {
    "left": (16, 32),
    "right": (48, 32),
    "top": (32, 16),
    "bottom": (32, 48),
    "center": (32, 32),
}
_PLAIN: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
    "beige": (225, 210, 180),
    "light blue": (170, 200, 235),
    "dark green": (20, 60, 35),
}
_GRADIENTS = (("white", "gray"), ("black", "gray"), ("beige", "white"), ("light blue", "white"))
#: Background names: plain colours, then vertical gradients "<top> to <bottom> gradient".
BACKGROUNDS: tuple[str, ...] = (*_PLAIN, *(f"{a} to {b} gradient" for a, b in _GRADIENTS))
STYLE_TRIGGER = "dmstripes"
OUTLINE_TRIGGER = "dmoutline"
_OUTLINE = 7  # max-filter size: the outline is 3 px wide at 64x64
#: Outline colour of each object colour in the outline style (its complement in the palette).
OUTLINE_INK = {
    "red": "cyan",
    "cyan": "red",
    "orange": "blue",
    "blue": "orange",
    "yellow": "purple",
    "purple": "yellow",
    "green": "pink",
    "pink": "green",
}
_STRIPE_PERIOD = 8  # pixels at 64x64

Split = Literal["train", "eval", "any"]
Style = Literal["plain", "striped", "outline"]

_SIZE_WORDS = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
_POSITION_PHRASES = {
    "left": ("on the left", "at the left", "on the left side"),
    "right": ("on the right", "at the right", "on the right side"),
    "top": ("at the top", "on top", "near the top"),
    "bottom": ("at the bottom", "near the bottom", "on the bottom"),
    "center": ("in the middle", "in the center", "centered"),
}
_POSITION_TAGS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "center": "center"}


@dataclass(frozen=True, slots=True)
class Scene:
    """One object on a background; ``dx``/``dy`` jitter the centre by a few pixels."""

    shape: str
    color: str
    size: str
    position: str
    background: str
    style: Style = "plain"
    dx: int = 0
    dy: int = 0
    angle: float = 0.0

    def __post_init__(self) -> None:
        for value, allowed, name in (
            (self.shape, SHAPES, "shape"),
            (self.color, tuple(COLORS), "color"),
            (self.size, tuple(SIZES), "size"),
            (self.position, tuple(POSITIONS), "position"),
            (self.background, BACKGROUNDS, "background"),
            (self.style, ("plain", "striped", "outline"), "style"),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")

    @property
    def center(self) -> tuple[float, float]:
        """Object centre (x, y) in pixels."""
        x, y = POSITIONS[self.position]
        return float(x + self.dx), float(y + self.dy)

    @property
    def radius(self) -> float:
        """Radius of the circle circumscribing the object, in pixels."""
        return SIZES[self.size]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered scene: ``image`` uint8 (64, 64, 3), ``mask`` bool (64, 64), captions (first = canonical)."""

    scene: Scene
    image: np.ndarray
    mask: np.ndarray
    captions: tuple[str, ...]


def is_held_out(shape: str, color: str, position: str) -> bool:
    """Whether a (shape, colour, position) combination belongs to the evaluation split (about 1 in 8)."""
    return zlib.crc32(f"{shape}|{color}|{position}".encode()) % 8 == 0


def sample_scene(seed: int, split: Split = "train", *, style: Style = "plain") -> Scene:
    """A scene drawn deterministically from ``seed`` within ``split``."""
    rng = np.random.default_rng([seed, 0xDE30])
    while True:
        shape = SHAPES[rng.integers(len(SHAPES))]
        color = tuple(COLORS)[rng.integers(len(COLORS))]
        position = tuple(POSITIONS)[rng.integers(len(POSITIONS))]
        held = is_held_out(shape, color, position)
        if split == "any" or held == (split == "eval"):
            break
    size = tuple(SIZES)[rng.integers(len(SIZES))]
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
    angle = float(rng.uniform(-12.0, 12.0)) if shape in ("square", "triangle", "star") else 0.0
    return Scene(shape, color, size, position, background, style, dx, dy, angle)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        corners = [45.0, 135.0, 225.0, 315.0]
        radii = [r * 0.92] * 4
    elif shape == "triangle":
        corners = [-90.0, 30.0, 150.0]
        radii = [r] * 3
        cy += r * 0.2  # centre the triangle's bounding box on the position
    else:  # star
        corners = [-90.0 + 36.0 * i for i in range(10)]
        radii = [r if i % 2 == 0 else r * 0.45 for i in range(10)]
    out = []
    for deg, rad in zip(corners, radii, strict=True):
        t = np.deg2rad(deg + angle)
        out.append((cx + rad * float(np.cos(t)), cy + rad * float(np.sin(t))))
    return out


def shape_mask(
    shape: str, center: tuple[float, float], radius: float, angle: float = 0.0, size: int = IMAGE_SIZE
) -> np.ndarray:
    """Anti-aliased coverage (float32 in [0, 1], ``size``x``size``) of a shape."""
    big = Image.new("L", (size * _SS, size * _SS), 0)
    draw = ImageDraw.Draw(big)
    cx, cy, r = center[0] * _SS, center[1] * _SS, radius * _SS
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        if shape == "ring":
            inner = r * 0.55
            draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    elif shape in ("square", "triangle", "star"):
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=255)
    else:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}.")
    small = big.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _background(name: str) -> np.ndarray:
    if name.endswith(" gradient"):
        top, bottom = name.removesuffix(" gradient").split(" to ")
    else:
        top = bottom = name
    t = np.linspace(0.0, 1.0, IMAGE_SIZE, dtype=np.float32)[:, None, None]
    a = np.asarray(_PLAIN[top], dtype=np.float32)
    b = np.asarray(_PLAIN[bottom], dtype=np.float32)
    column = a * (1.0 - t) + b * t
    return np.broadcast_to(column, (IMAGE_SIZE, IMAGE_SIZE, 3)).copy()


def _fill(scene: Scene) -> np.ndarray:
    color = np.asarray(COLORS[scene.color], dtype=np.float32)
    fill = np.broadcast_to(color, (IMAGE_SIZE, IMAGE_SIZE, 3)).copy()
    if scene.style == "striped":
        yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
        dark = ((xx + yy) % _STRIPE_PERIOD) < _STRIPE_PERIOD // 2
        fill[dark] = 255.0 - (255.0 - color) * 0.15  # near-white stripes
    return fill


def render(scene: Scene) -> Rendered:
    """Draw ``scene``: image, object mask (coverage ≥ 0.5) and captions."""
    alpha = shape_mask(scene.shape, scene.center, scene.radius, scene.angle)
    image = _background(scene.background)
    if scene.style == "outline":
        coverage = Image.fromarray(np.rint(alpha * 255).astype(np.uint8)).filter(
            ImageFilter.MaxFilter(_OUTLINE)
        )
        ring = np.asarray(coverage.filter(ImageFilter.GaussianBlur(0.6)), np.float32)[..., None] / 255.0
        ink = np.asarray(COLORS[OUTLINE_INK[scene.color]], np.float32)
        image = image * (1.0 - ring) + ink * ring
    image = image * (1.0 - alpha[..., None]) + _fill(scene) * alpha[..., None]
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Rendered(scene=scene, image=pixels, mask=alpha >= 0.5, captions=captions(scene))


def captions(scene: Scene) -> tuple[str, ...]:
    """Several captions of ``scene`` (sentence and tag styles); every one names shape, colour, position."""
    words = _SIZE_WORDS[scene.size]
    where = _POSITION_PHRASES[scene.position]
    bg = scene.background
    s, c, p = scene.shape, scene.color, scene.position
    out = [
        f"a {words[0]} {c} {s} {where[0]}, {bg} background",
        f"{words[1]} {c} {s} {where[1]} over a {bg} background",
        f"a {c} {s} {where[2]} on a {bg} background, {words[-1]}",
        f"{bg} background with a {words[0]} {c} {s} {where[0]}",
        f"{c} {s}, {words[0]}, {_POSITION_TAGS[p]}, {bg} background",
    ]
    if scene.style != "plain":
        trigger = STYLE_TRIGGER if scene.style == "striped" else OUTLINE_TRIGGER
        out = [
            f"{trigger}, {text}" if i % 2 == 0 else f"{text}, {trigger} style" for i, text in enumerate(out)
        ]
    return tuple(out)


def vocabulary() -> tuple[str, ...]:
    """The demo tokenizer's whole words: every plain-caption word, the stripe trigger and ``style``.

    The outline trigger ``dmoutline`` is deliberately not among them: it tokenises into pieces, like most real
    LoRA trigger words.
    """
    words: set[str] = {STYLE_TRIGGER, "style"}
    for shape in SHAPES:
        for color in COLORS:
            for size in SIZES:
                for position in POSITIONS:
                    for background in BACKGROUNDS:
                        for text in captions(Scene(shape, color, size, position, background)):
                            words.update(text.replace(",", " ").split())
    return tuple(sorted(words))


def edge_map(mask: np.ndarray) -> np.ndarray:
    """The one-pixel outline of a boolean mask (bool, same shape)."""
    m = mask.astype(bool)
    padded = np.pad(m, 1, constant_values=False)
    interior = (
        padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    )
    return m & ~interior


def control_image(mask: np.ndarray, kind: Literal["mask", "edges"] = "mask") -> Image.Image:
    """A ControlNet condition image: white object mask (or its outline) on black, RGB."""
    m = edge_map(mask) if kind == "edges" else mask.astype(bool)
    gray = np.where(m, 255, 0).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), mode="RGB")
