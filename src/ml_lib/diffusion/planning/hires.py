"""A1111's hires fix as pure rules: upscaler names, the second pass's size, steps and strength, and when the
planner turns it on by itself.

Follows ``StableDiffusionProcessingTxt2Img`` of AUTOMATIC1111 (modules/processing.py): the target is
``int(width * scale)`` x ``int(height * scale)``, or "Hires resize" WxH (one side 0: kept to the first pass's
aspect; both: the image is upscaled to cover WxH and the latent is cropped centred by whole latent pixels);
"Hires steps" 0 means the first pass's steps, and the second pass runs exactly that many denoising steps
of a schedule of ``int(steps / min(strength, 0.999))`` steps (A1111's ``setup_img2img_steps`` with steps
given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..catalog.families import Family
from ..errors import RequestError, UnknownSamplerError
from ..plan import Decision, HiresPlan, ModelRef, Source
from ..request import GenerationRequest
from ..settings import Limits
from .checks import check_size
from .profiles import FamilyProfile

__all__ = [
    "IMAGE_UPSCALERS",
    "LATENT_UPSCALERS",
    "NO_IP_ADAPTERS",
    "HiresTarget",
    "LatentMode",
    "auto_hires_size",
    "check_hires",
    "hires_requested",
    "hires_schedule",
    "hires_target",
    "is_builtin_upscaler",
    "plan_hires",
]

_OPT_F = 8  # latent pixels per image pixel side (A1111's opt_f)
#: A request this many times the native area (or more) gets the hires fix when it did not say.
AUTO_HIRES_AREA = 2.25


@dataclass(frozen=True, slots=True)
class LatentMode:
    """``torch.nn.functional.interpolate`` arguments of one of A1111's latent upscalers."""

    mode: str
    antialias: bool


#: A1111's ``shared.latent_upscale_modes`` ("Latent" is its default).
LATENT_UPSCALERS: dict[str, LatentMode] = {
    "Latent": LatentMode("bilinear", False),
    "Latent (antialiased)": LatentMode("bilinear", True),
    "Latent (bicubic)": LatentMode("bicubic", False),
    "Latent (bicubic antialiased)": LatentMode("bicubic", True),
    "Latent (nearest)": LatentMode("nearest", False),
    "Latent (nearest-exact)": LatentMode("nearest-exact", False),
}
#: A1111's built-in image upscalers ("None": a plain Lanczos resize, like A1111's).
IMAGE_UPSCALERS = ("None", "Lanczos", "Nearest")


#: An IP-Adapter is loaded into the first model's UNet only; the hires checkpoint's would need its own.
NO_IP_ADAPTERS = "IP-Adapters with a hires checkpoint are not supported yet; drop --hires-checkpoint or them."


def is_builtin_upscaler(name: str) -> bool:
    """True for a latent mode or a built-in image upscaler (any case), not a model file."""
    folded = name.strip().casefold()
    return any(folded == n.casefold() for n in (*LATENT_UPSCALERS, *IMAGE_UPSCALERS))


def _canonical(name: str) -> str:
    folded = name.strip().casefold()
    return next((n for n in (*LATENT_UPSCALERS, *IMAGE_UPSCALERS) if n.casefold() == folded), name)


@dataclass(frozen=True, slots=True)
class HiresTarget:
    """Where the second pass runs: the upscale size and the latent pixels cropped off each axis."""

    upscale_width: int
    upscale_height: int
    truncate_x: int = 0
    truncate_y: int = 0

    @property
    def latent_size(self) -> tuple[int, int]:
        """(height, width) of the second pass's latent after cropping."""
        return (
            self.upscale_height // _OPT_F - self.truncate_y,
            self.upscale_width // _OPT_F - self.truncate_x,
        )

    @property
    def width(self) -> int:
        """Width of the final image."""
        return self.latent_size[1] * _OPT_F

    @property
    def height(self) -> int:
        """Height of the final image."""
        return self.latent_size[0] * _OPT_F


def hires_target(width: int, height: int, hires: HiresPlan) -> HiresTarget:
    """A1111's ``calculate_target_resolution`` for a first pass of ``width`` x ``height``."""
    rx, ry = hires.resize_width, hires.resize_height
    if rx == 0 and ry == 0:
        return HiresTarget(int(width * hires.scale), int(height * hires.scale))
    if ry == 0:
        return HiresTarget(rx, rx * height // width)
    if rx == 0:
        return HiresTarget(ry * width // height, ry)
    if width / height < rx / ry:
        up_x, up_y = rx, rx * height // width
    else:
        up_x, up_y = ry * width // height, ry
    return HiresTarget(up_x, up_y, (up_x - rx) // _OPT_F, (up_y - ry) // _OPT_F)


def hires_schedule(steps: int, hires: HiresPlan) -> tuple[int, float]:
    """(num_inference_steps, strength) for diffusers' img2img so that exactly A1111's second-pass steps run.

    A1111 runs the last ``k`` steps (``k`` = Hires steps, else ``steps``) of a ``int(k / min(s, 0.999))``
    step schedule; diffusers runs ``int(n * strength)`` steps of an ``n`` step schedule, so the strength
    handed over is ``(k + 0.5) / n`` (never above 1), which floors to exactly ``k``.
    """
    k = hires.steps or steps
    total = int(k / min(hires.denoise, 0.999))
    return total, min(1.0, (k + 0.5) / total)


def hires_requested(request: GenerationRequest) -> bool | None:
    """True when the request turns the hires fix on (``hires`` or any hires option), False when it turns
    it off, None when it does not say."""
    if request.hires is not None:
        return request.hires
    options = (
        request.hires_scale,
        request.hires_resize,
        request.hires_steps,
        request.hires_upscaler,
        request.hires_denoise,
        request.hires_sampler,
        request.hires_prompt,
        request.hires_negative_prompt,
        request.hires_checkpoint,
    )
    return True if any(o is not None for o in options) else None


def auto_hires_size(
    request: GenerationRequest, profile: FamilyProfile, width: int, height: int, *, img2img: bool
) -> tuple[int, int] | None:
    """The first-pass size when the planner should turn the hires fix on by itself, else None.

    Only for txt2img with ``auto`` on, a size the user asked for, no hires option given, and an area at
    least :data:`AUTO_HIRES_AREA` times the family's native one: the first pass is scaled to the native
    area, each side rounded up to 64 (A1111's old "first pass size" rule), and the hires pass resizes to
    the requested size.
    """
    if img2img or not request.auto or hires_requested(request) is not None:
        return None
    if request.width is None and request.height is None:
        return None
    if profile.family is Family.DEMO:
        return None  # trained at one size only: a second pass cannot add detail it never learned
    native = profile.width * profile.height
    if width * height < AUTO_HIRES_AREA * native:
        return None
    scale = math.sqrt(native / (width * height))
    return math.ceil(scale * width / 64) * 64, math.ceil(scale * height / 64) * 64


def check_hires(hires: HiresPlan, width: int, height: int, limits: Limits) -> None:
    """RequestError when a hires pass's values (or its target size) cannot be used."""
    if not 0 < hires.denoise <= 1:
        raise RequestError(f"hires denoising strength must be above 0 and at most 1, got {hires.denoise!r}.")
    if not 1 <= hires.scale <= 8:
        raise RequestError(f"hires scale must be between 1 and 8, got {hires.scale!r}.")
    if hires.resize_width < 0 or hires.resize_height < 0:
        raise RequestError("hires resize sides must be 0 (from the other side) or positive.")
    if not 0 <= hires.steps <= limits.max_steps:
        raise RequestError(f"hires steps must be between 0 (same as steps) and {limits.max_steps}.")
    target = hires_target(width, height, hires)
    if target.width < _OPT_F or target.height < _OPT_F:
        raise RequestError(f"the hires target {target.width}x{target.height} is too small; raise the scale.")
    check_size(target.width, target.height, limits)  # the final image; the upscale is a crop away from it
    if target.upscale_width * target.upscale_height > 2 * limits.max_pixels:
        raise RequestError(
            f"the hires upscale to {target.upscale_width}x{target.upscale_height} is too large."
        )


def plan_hires(
    request: GenerationRequest,
    *,
    width: int,
    height: int,
    limits: Limits,
    upscaler_path: str | None,
    upscaler_hash: str | None,
    auto_resize: tuple[int, int] | None,
    items: list[Decision],
    first_schedule: str | None = None,
    checkpoint: ModelRef | None = None,
) -> HiresPlan | None:
    """The hires pass of a plan whose first pass is ``width`` x ``height`` (None: one pass), with its
    decisions appended to ``items``; ``auto_resize`` is the size the planner chose it for by itself;
    ``first_schedule`` is the first pass's schedule, which a hires sampler keeps unless it names one;
    ``checkpoint`` the resolved hires checkpoint (None: the first pass's model)."""
    wanted = hires_requested(request)
    if auto_resize is None and not wanted:
        return None
    if request.init_image is not None:
        raise RequestError("The hires fix is a txt2img second pass; drop --hires for img2img and inpaint.")
    if checkpoint is not None and request.ip_adapters:
        raise RequestError(NO_IP_ADAPTERS)
    resize = request.hires_resize or auto_resize or (0, 0)
    sampler = ""
    schedule = ""
    if request.hires_sampler:
        from ..samplers import parse_sampler, split_sampler

        # A1111's hires scheduler defaults to "Use same scheduler": only a schedule named is kept.
        # When diffusers lacks that schedule for the hires sampler, its own default is kept instead.
        keep = split_sampler(request.hires_sampler)[1] is not None
        try:
            choice = parse_sampler(request.hires_sampler, None if keep else first_schedule)
        except UnknownSamplerError:
            if keep:
                raise
            choice, keep = parse_sampler(request.hires_sampler), True
        sampler, schedule = choice.sampler, (choice.schedule if keep else "")
    upscaler = request.hires_upscaler or "Latent"
    hires = HiresPlan(
        upscaler=_canonical(upscaler) if upscaler_path is None else _stem(upscaler_path),
        scale=float(request.hires_scale if request.hires_scale is not None else 2.0),
        resize_width=int(resize[0]),
        resize_height=int(resize[1]),
        steps=int(request.hires_steps or 0),
        denoise=float(request.hires_denoise if request.hires_denoise is not None else 0.7),
        sampler=sampler,
        schedule=schedule,
        prompt=request.hires_prompt or "",
        negative_prompt=request.hires_negative_prompt or "",
        upscaler_path=upscaler_path,
        upscaler_hash=upscaler_hash,
        checkpoint=checkpoint,
    )
    if upscaler_path is None and not is_builtin_upscaler(hires.upscaler):
        raise RequestError(f"Unknown hires upscaler {upscaler!r}; use one of {', '.join(_names())}.")
    check_hires(hires, width, height, limits)
    target = hires_target(width, height, hires)
    size = f"{target.width}x{target.height}"
    if auto_resize is not None:
        reason = (
            f"{size} is far above the model's native size: first pass at {width}x{height}, "
            f"then {hires.upscaler} upscale and {hires.denoise:g} denoise (A1111's hires fix)"
        )
        items.append(Decision("hires", size, Source.PROFILE, reason))
    else:
        items.append(Decision("hires", size, Source.USER, f"hires fix to {size} with {hires.upscaler}"))
    if checkpoint is not None:
        name = checkpoint.name or checkpoint.reference
        items.append(
            Decision("hires_checkpoint", name, Source.USER, "the hires pass runs on this checkpoint")
        )
    return hires


def _stem(path: str) -> str:
    """A model file's name as A1111 lists upscalers: the file name without folder and suffix."""
    return path.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _names() -> tuple[str, ...]:
    return (*LATENT_UPSCALERS, *IMAGE_UPSCALERS, "a .safetensors upscaler model (ESRGAN …)")
