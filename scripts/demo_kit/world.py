"""Demo world 2: one coloured shape on a plain or gradient background (numpy + Pillow, no torch).

One colour vocabulary (:data:`COLORS`) serves objects and backgrounds: any object colour on any other
background (:data:`BACKGROUNDS`: every colour, plus four vertical gradients). A :class:`Scene` renders
deterministically to a 64x64 RGB image, its object mask and captions in the phrasing people type ("a red
circle on a blue background", "white star on black", "big green square in the middle, dark background");
position, size and background are sometimes left unsaid. :func:`parse_caption` reads back what a caption
asks for. Combinations listed by :func:`is_held_out` (shape/colour/position triples, as in world 1, and
object/background colour pairs) never occur in training and make the evaluation split. Two styles carry a
trigger word: ``"striped"`` (:data:`STYLE_TRIGGER`, VAE data only) and ``"outline"`` (:data:`OUTLINE_TRIGGER`,
a thick outline in a colour legible against both the object and the background: the style-LoRA data).
:func:`sample_control_scene` puts the object anywhere (ControlNet data); :func:`control_image` gives the mask.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "BACKGROUNDS", "COLORS", "IMAGE_SIZE", "OUTLINE_TRIGGER", "POSITIONS", "SHAPES", "SIZES",
    "STYLE_TRIGGER", "WORLD_VERSION", "Rendered", "Scene", "Split", "allowed", "background_image",
    "captions", "control_image", "edge_map", "is_held_out", "outline_ink", "parse_caption", "render",
    "sample_control_scene", "sample_scene", "shape_mask", "vocabulary",
]  # fmt: skip

WORLD_VERSION = 2
IMAGE_SIZE = 64
_SS = 4  # supersampling factor for anti-aliased drawing

SHAPES = ("circle", "square", "triangle", "star", "ring")
#: Object and background colours; every pair is at least 65 apart in RGB (the analyser's threshold is 60).
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (40, 170, 60),
    "cyan": (30, 200, 210),
    "blue": (30, 70, 220),
    "purple": (140, 50, 190),
    "pink": (240, 110, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
    "brown": (125, 75, 35),
    "beige": (225, 210, 170),
    "light blue": (150, 195, 245),
    "dark blue": (20, 30, 120),
    "light green": (150, 230, 140),
    "dark green": (20, 90, 45),
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
_GRADIENTS = (("white", "gray"), ("black", "gray"), ("beige", "white"), ("light blue", "white"))
#: Background names: every colour, then vertical gradients "<top> to <bottom> gradient".
BACKGROUNDS: tuple[str, ...] = (*COLORS, *(f"{a} to {b} gradient" for a, b in _GRADIENTS))
STYLE_TRIGGER = "dmstripes"
OUTLINE_TRIGGER = "dmoutline"
_OUTLINE = 7  # max-filter size: the outline is 3 px wide at 64x64
#: Outline colours of each object colour, first choice first (the complement, then black or white).
_INKS: dict[str, tuple[str, str]] = {
    "red": ("cyan", "white"), "cyan": ("red", "black"), "orange": ("blue", "black"),
    "blue": ("orange", "white"), "yellow": ("purple", "black"), "purple": ("yellow", "white"),
    "green": ("pink", "white"), "pink": ("green", "black"), "white": ("black", "red"),
    "black": ("white", "yellow"), "gray": ("yellow", "black"), "brown": ("cyan", "white"),
    "beige": ("dark blue", "red"), "light blue": ("orange", "black"), "dark blue": ("yellow", "white"),
    "light green": ("purple", "black"), "dark green": ("pink", "white"),
}  # fmt: skip
_STRIPE_PERIOD = 8  # pixels at 64x64

Split = Literal["train", "eval", "any"]
Style = Literal["plain", "striped", "outline"]

_SIZE_WORDS = {"small": ("small", "little", "tiny"), "big": ("big", "large")}
_POSITION_PHRASES = {
    "left": ("on the left", "at the left", "on the left side", "to the left"),
    "right": ("on the right", "at the right", "on the right side", "to the right"),
    "top": ("at the top", "near the top", "on top", "at the top of the image"),
    "bottom": ("at the bottom", "near the bottom", "on the bottom", "at the bottom of the image"),
    "center": ("in the middle", "in the center", "centered", "in the centre"),
}
_ALIASES = {"black": "dark", "white": "light"}  # "dark background", "light background"


@dataclass(frozen=True, slots=True)
class Scene:
    """One object on a background; ``dx``/``dy`` move the centre off its position's (a few pixels in
    training scenes, anywhere for ControlNet scenes)."""

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
        for value, choices, name in (
            (self.shape, SHAPES, "shape"),
            (self.color, tuple(COLORS), "color"),
            (self.size, tuple(SIZES), "size"),
            (self.position, tuple(POSITIONS), "position"),
            (self.background, BACKGROUNDS, "background"),
            (self.style, ("plain", "striped", "outline"), "style"),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}.")
        if not allowed(self.color, self.background):
            raise ValueError(
                f"The object colour {self.color!r} is (near) the background's ({self.background!r})."
            )

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


def _background_colours(background: str) -> tuple[str, ...]:
    """The colour names a background is made of (one, or a gradient's two)."""
    if background.endswith(" gradient"):
        return tuple(background.removesuffix(" gradient").split(" to "))
    return (background,)


def allowed(color: str, background: str) -> bool:
    """Whether a ``color`` object stands out on ``background``: at least 70 (RGB) from every colour of it
    (a gradient's every shade)."""
    ends = [np.asarray(COLORS[c], np.float32) for c in _background_colours(background)]
    shades = [ends[0] * (1 - t) + ends[-1] * t for t in np.linspace(0.0, 1.0, 9)]
    return min(float(np.linalg.norm(np.asarray(COLORS[color], np.float32) - s)) for s in shades) >= 70.0


def is_held_out(shape: str, color: str, position: str, background: str = "") -> bool:
    """Whether a combination belongs to the evaluation split: a (shape, colour, position) triple (1 in 8,
    world 1's split) or an (object colour, background) pair (1 in 10)."""
    triple = zlib.crc32(f"{shape}|{color}|{position}".encode()) % 8 == 0
    return triple or (bool(background) and zlib.crc32(f"{color}|on|{background}".encode()) % 10 == 0)


def _choice(rng: np.random.Generator, values: tuple[str, ...]) -> str:
    return values[int(rng.integers(len(values)))]


def sample_scene(seed: int, split: Split = "train", *, style: Style = "plain") -> Scene:
    """A scene drawn deterministically from ``seed`` within ``split``."""
    rng = np.random.default_rng([seed, 0xDE32])
    while True:
        shape, color, position = (
            _choice(rng, SHAPES),
            _choice(rng, tuple(COLORS)),
            _choice(rng, tuple(POSITIONS)),
        )
        background = _choice(rng, BACKGROUNDS)
        if not allowed(color, background):
            continue
        held = is_held_out(shape, color, position, background)
        if split == "any" or held == (split == "eval"):
            break
    size = _choice(rng, tuple(SIZES))
    dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
    angle = float(rng.uniform(-12.0, 12.0)) if shape in ("square", "triangle", "star") else 0.0
    return Scene(shape, color, size, position, background, style, dx, dy, angle)


def sample_control_scene(seed: int) -> Scene:
    """A training scene whose object sits anywhere in the frame (its ``position`` is the nearest word)."""
    base = sample_scene(seed, "train")
    rng = np.random.default_rng([seed, 0xC047])
    margin = int(np.ceil(SIZES[base.size])) + 2
    x, y = (int(v) for v in rng.integers(margin, IMAGE_SIZE - margin + 1, size=2))
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - x) ** 2 + (POSITIONS[p][1] - y) ** 2)
    px, py = POSITIONS[position]
    return Scene(base.shape, base.color, base.size, position, base.background, base.style, x - px, y - py,
                 base.angle)  # fmt: skip


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        corners, radii = [45.0, 135.0, 225.0, 315.0], [r * 0.92] * 4
    elif shape == "triangle":
        corners, radii = [-90.0, 30.0, 150.0], [r] * 3
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


def background_image(name: str) -> np.ndarray:
    """The background ``name`` alone, float32 (64, 64, 3) in 0-255."""
    colours = _background_colours(name)
    top, bottom = colours[0], colours[-1]
    t = np.linspace(0.0, 1.0, IMAGE_SIZE, dtype=np.float32)[:, None, None]
    a, b = np.asarray(COLORS[top], np.float32), np.asarray(COLORS[bottom], np.float32)
    return np.broadcast_to(a * (1.0 - t) + b * t, (IMAGE_SIZE, IMAGE_SIZE, 3)).copy()


def outline_ink(color: str, background: str) -> str:
    """The outline colour of a ``color`` object on ``background``: its complement unless that is (near)
    a background colour, then the second choice."""
    first, second = _INKS[color]
    near = [
        np.linalg.norm(np.subtract(COLORS[first], COLORS[c])) < 90 for c in _background_colours(background)
    ]
    return second if any(near) else first


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
    image = background_image(scene.background)
    if scene.style == "outline":
        coverage = Image.fromarray(np.rint(alpha * 255).astype(np.uint8)).filter(
            ImageFilter.MaxFilter(_OUTLINE)
        )
        ring = np.asarray(coverage.filter(ImageFilter.GaussianBlur(0.6)), np.float32)[..., None] / 255.0
        ink = np.asarray(COLORS[outline_ink(scene.color, scene.background)], np.float32)
        image = image * (1.0 - ring) + ink * ring
    image = image * (1.0 - alpha[..., None]) + _fill(scene) * alpha[..., None]
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Rendered(scene=scene, image=pixels, mask=alpha >= 0.5, captions=captions(scene))


_SCENE = "scene"


def captions(scene: Scene, *, position: str | None = _SCENE) -> tuple[str, ...]:
    """Captions of ``scene`` (sentences and tags; the first names everything). ``position`` overrides the
    position said (``None``: none; ControlNet data says a neutral or conflicting one)."""
    said = scene.position if position == _SCENE else position
    where = _POSITION_PHRASES[said] if said else ("",) * 4
    sw = _SIZE_WORDS[scene.size]
    c, s, bg = scene.color, scene.shape, scene.background
    a = "an" if c[0] in "aeiou" else "a"
    alias = _ALIASES.get(bg, bg)
    tag = f", {said}" if said else ""
    out = [
        f"{a} {sw[0]} {c} {s} {where[0]}, {bg} background",
        f"{a} {c} {s} on a {bg} background{',' if said else ''} {where[1]}",
        f"{c} {s} on {bg}{',' if said else ''} {where[2]}",
        f"{sw[-1]} {c} {s} {where[3]} over a {bg} backdrop",
        f"{sw[1]} {c} {s} {where[0]}, {alias} background",
        f"{bg} background with {a} {c} {s} {where[1]}",
        f"{c} {s}, {sw[0]}{tag}, {bg} background",
        f"{a} {c} {s} {where[2]}",
        f"{a} {sw[0]} {c} {s} against a {bg} background{',' if said else ''} {where[3]}",
    ]
    if scene.style != "plain":
        trigger = STYLE_TRIGGER if scene.style == "striped" else OUTLINE_TRIGGER
        out = [f"{trigger}, {t}" if i % 2 == 0 else f"{t}, {trigger} style" for i, t in enumerate(out)]
    return tuple(re.sub(r"\s+", " ", t).replace(" ,", ",").strip(" ,") for t in out)


_COLOUR_WORDS = sorted(COLORS, key=lambda c: -len(c))  # "light blue" before "blue"
_BG_CUES = ("background", "backdrop")


def parse_caption(text: str) -> dict[str, str | None]:
    """What a caption asks for: ``shape``, ``color``, ``background``, ``position``, ``size`` (``None``:
    not said). The object's colour is the one before the shape word; the background's is the one said
    with "background"/"backdrop", or after "on"/"over"/"against" once the shape is named."""
    words = re.sub(r"[^a-z ]", " ", text.lower()).split()
    out: dict[str, str | None] = dict.fromkeys(("shape", "color", "background", "position", "size"))
    found: list[tuple[int, int, str]] = []  # (start, end, colour) spans
    i = 0
    while i < len(words):
        for name in _COLOUR_WORDS:
            n = len(name.split())
            if words[i : i + n] == name.split():
                found.append((i, i + n, name))
                i += n - 1
                break
        i += 1
    shape_at = next((i for i, w in enumerate(words) if w in SHAPES), None)
    if shape_at is not None:
        out["shape"] = words[shape_at]
        before = [f for f in found if f[1] <= shape_at and not _is_background(words, f, shape_at)]
        out["color"] = before[-1][2] if before else None
    joined = " ".join(words)
    bgs = [f[2] for f in found if _is_background(words, f, shape_at)]
    gradients = [g for g in BACKGROUNDS if g.endswith(" gradient") and g in joined]
    if gradients:
        out["background"] = gradients[0]
    elif bgs:
        out["background"] = bgs[0]
    else:
        for alias, colour in (("dark", "black"), ("light", "white")):
            if re.search(rf"\b{alias} (background|backdrop)\b", joined):
                out["background"] = colour
    for position, phrases in _POSITION_PHRASES.items():
        if any(re.search(rf"\b{p}\b", joined) for p in phrases) or re.search(rf"(^|, ){position}(,|$)", text):
            out["position"] = position
    out["size"] = next((s for s, ws in _SIZE_WORDS.items() if any(w in words for w in ws)), None)
    return out


def _is_background(words: list[str], span: tuple[int, int, str], shape_at: int | None) -> bool:
    start, end, _ = span
    if end < len(words) and words[end] in _BG_CUES:
        return True
    prev = words[start - 1] if start > 0 else ""
    prev = words[start - 2] if prev in ("a", "an") and start > 1 else prev
    return shape_at is not None and start > shape_at and prev in ("on", "over", "against")


@cache
def vocabulary() -> tuple[str, ...]:
    """The demo tokenizer's whole words: every caption word, the stripe trigger and ``style``.

    The outline trigger ``dmoutline`` is deliberately not among them: it tokenises into pieces, like most
    real LoRA trigger words.
    """
    words: set[str] = {STYLE_TRIGGER, "style"}
    for color in COLORS:
        for background in BACKGROUNDS:
            if not allowed(color, background):
                continue
            for position in (*POSITIONS, None):
                for size in SIZES:
                    scene = Scene("circle", color, size, "center", background)
                    for text in captions(scene, position=position):
                        words.update(text.replace(",", " ").split())
    return tuple(sorted(words | set(SHAPES)))


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
