"""The request options ``generate`` and ``plan`` share (one list), and their parsing into a request.

:func:`request_command` gives a command PROMPT plus every option of :data:`REQUEST_OPTIONS`, then the
command's own options, and calls it with the built :class:`~ml_lib.diffusion.request.GenerationRequest`.
Parsing only, no work.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import RequestError
from ..request import GenerationRequest

__all__ = [
    "REQUEST_OPTIONS",
    "build_request",
    "control_requests",
    "ip_requests",
    "lora_requests",
    "parse_size",
    "request_command",
]


def parse_size(size: str) -> tuple[int, int]:
    """``"512x768"`` → (512, 768)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*", size)
    if not match:
        raise RequestError(f"Size {size!r} is not WIDTHxHEIGHT, e.g. 512x768.")
    return int(match.group(1)), int(match.group(2))


def lora_requests(values: list[str] | None) -> tuple[Any, ...]:
    """``--lora`` values as LoraRequests."""
    from ..request import LoraRequest
    from ..resolve.loras import parse_lora_arg

    return tuple(LoraRequest(*parse_lora_arg(v)) for v in values or ())


def _split_unit(text: str, option: str) -> tuple[str, str, float | None]:
    """MODEL:IMAGE[:scale] → (model, image, scale)."""
    head, _, last = text.rpartition(":")
    scale: float | None = None
    try:
        scale = float(last)
        text = head
    except ValueError:
        pass
    model, sep, image = text.partition(":")
    if not sep or not model or not image:
        raise RequestError(f"{option} {text!r} is not MODEL:IMAGE[:scale].")
    return model, image, scale


def control_requests(values: list[str] | None, types: list[str] | None) -> tuple[Any, ...]:
    """``--controlnet`` units with their ``--control-type`` (one for all, or one each)."""
    from ..request import ControlRequest

    values, types = values or [], types or []
    if len(types) not in (0, 1, len(values)):
        raise RequestError("Give one --control-type for all --controlnet units, or one per unit.")
    out = []
    for i, value in enumerate(values):
        model, image, scale = _split_unit(value, "--controlnet")
        kind = types[i] if len(types) == len(values) else (types[0] if types else "none")
        out.append(ControlRequest(model, Path(image), kind, scale))
    return tuple(out)


def ip_requests(values: list[str] | None, weights: str) -> tuple[Any, ...]:
    """``--ip-adapter`` values as IPAdapterRequests."""
    from ..request import IPAdapterRequest

    out = []
    for value in values or []:
        model, image, scale = _split_unit(value, "--ip-adapter")
        out.append(IPAdapterRequest(model, Path(image), weights, 1.0 if scale is None else scale))
    return tuple(out)


def build_request(prompt: str, **kw: Any) -> GenerationRequest:
    """A GenerationRequest from request fields plus CLI values (``size``, ``out`` and ``config`` translated)."""
    size = kw.pop("size")
    if size:
        if kw.get("width") or kw.get("height"):
            raise RequestError("Give either --size or --width/--height, not both.")
        kw["width"], kw["height"] = parse_size(size)
    out = kw.pop("out")
    kw["output_dir"] = str(out) if out else None
    config = kw.pop("config", None)
    kw["config_dir"] = str(config) if config else None
    return GenerationRequest(prompt=prompt, **kw)


Negative = Annotated[str, typer.Option("--negative", "-n", help="Negative prompt.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Diffusers folder, .safetensors checkpoint or Hub id.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Weightless diffusers config folder for an unusual single file."),
]
SizeOpt = Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT, e.g. 512x768.")]
WidthOpt = Annotated[int | None, typer.Option("--width", "-W")]
HeightOpt = Annotated[int | None, typer.Option("--height", "-H")]
StepsOpt = Annotated[int | None, typer.Option("--steps", "-s")]
CfgOpt = Annotated[float | None, typer.Option("--cfg", help="CFG scale.")]
SamplerOpt = Annotated[
    str | None, typer.Option("--sampler", help='A1111 name, e.g. "DPM++ 2M" or "Euler a".')
]
ScheduleOpt = Annotated[str | None, typer.Option("--schedule", help="Automatic, Karras, Exponential, …")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed; image i of a batch uses seed + i.")]
BatchOpt = Annotated[int | None, typer.Option("--batch", "-b", help="Images in one batch.")]
ClipSkipOpt = Annotated[int | None, typer.Option("--clip-skip", help="1 = last CLIP layer (A1111).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="File-name template, e.g. '\\[date]-\\[seed]-\\[prompt_words]'."),
]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lora", help="LoRA file, optionally with weight: PATH[:w] or A1111's PATH:te:unet. Repeatable."
    ),
]
InitOpt = Annotated[Path | None, typer.Option("--init-image", help="Start from this image (img2img).")]
MaskOpt = Annotated[Path | None, typer.Option("--mask", help="Inpaint where this mask is white.")]
StrengthOpt = Annotated[
    float | None, typer.Option("--strength", help="Denoising strength 0..1 (A1111 0.75).")
]
ResizeOpt = Annotated[
    str | None, typer.Option("--resize-mode", help="just_resize, crop_and_resize or resize_and_fill.")
]
MaskBlurOpt = Annotated[int | None, typer.Option("--mask-blur", help="Mask blur radius in pixels (4).")]
FullResOpt = Annotated[
    bool, typer.Option("--inpaint-only-masked", help="Inpaint the masked area at full size.")
]
PaddingOpt = Annotated[
    int | None, typer.Option("--inpaint-padding", help="Padding around the masked area (32).")
]
ControlOpt = Annotated[
    list[str] | None,
    typer.Option("--controlnet", help="MODEL:IMAGE[:scale], repeatable (MODEL: folder or Hub id)."),
]
ControlTypeOpt = Annotated[
    list[str] | None,
    typer.Option("--control-type", help="Preprocessor per --controlnet (canny, scribble, tile, …; none)."),
]
IPOpt = Annotated[
    list[str] | None, typer.Option("--ip-adapter", help="FOLDER:IMAGE[:scale] (h94 layout), repeatable.")
]
IPWeightOpt = Annotated[str, typer.Option("--ip-adapter-weights", help="Weights file inside FOLDER/models.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="png (default), jpeg or webp.")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="speed, balanced (default) or quality.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also print time and peak memory per phase, and any retries.")
]
NoAutoOpt = Annotated[
    bool, typer.Option("--no-auto", help="No automatic checkpoint choice or LoRA recommendation.")
]
NoLearnOpt = Annotated[
    bool, typer.Option("--no-learn", help="Plan without what was learned from your ratings and edits.")
]
MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory",
        help="Memory strategy: none, balanced, sequential or aggressive (default: the fitting one).",
    ),
]
HiresOpt = Annotated[
    bool | None,
    typer.Option("--hires/--no-hires", help="A1111's hires fix: a second img2img pass at a larger size."),
]
HiresScaleOpt = Annotated[float | None, typer.Option("--hires-scale", help="Hires upscale factor (2).")]
HiresResizeOpt = Annotated[
    str | None, typer.Option("--hires-resize", help="Hires resize to WIDTHxHEIGHT instead (0: keep aspect).")
]
HiresStepsOpt = Annotated[int | None, typer.Option("--hires-steps", help="Hires steps (0: same as --steps).")]
HiresUpscalerOpt = Annotated[
    str | None,
    typer.Option(
        "--hires-upscaler",
        help='"Latent" (default), "Latent (bicubic)", … , Lanczos, Nearest, or a .safetensors upscaler model.',
    ),
]
HiresDenoiseOpt = Annotated[
    float | None, typer.Option("--hires-denoise", help="Denoising strength of the hires pass (0.7).")
]
HiresSamplerOpt = Annotated[str | None, typer.Option("--hires-sampler", help="Sampler of the hires pass.")]
HiresPromptOpt = Annotated[str | None, typer.Option("--hires-prompt", help="Prompt of the hires pass.")]
HiresNegativeOpt = Annotated[
    str | None, typer.Option("--hires-negative", help="Negative prompt of the hires pass.")
]
HiresCheckpointOpt = Annotated[
    str | None,
    typer.Option(
        "--hires-checkpoint", help="Checkpoint of the hires pass (a file or catalog name, same family)."
    ),
]
RefinerOpt = Annotated[
    str | None,
    typer.Option("--refiner", help="SDXL refiner: a file, a catalog name, or 'auto' (a catalogued one)."),
]
RefinerSwitchOpt = Annotated[
    float | None,
    typer.Option("--refiner-switch", help="Fraction of the steps where the refiner takes over (0.8)."),
]
VariationSeedOpt = Annotated[int | None, typer.Option("--variation-seed", help="A1111's variation seed.")]
VariationStrengthOpt = Annotated[
    float | None, typer.Option("--variation-strength", help="Variation seed strength 0..1.")
]
SeedResizeOpt = Annotated[
    str | None,
    typer.Option("--seed-resize-from", help="Draw the noise at WIDTHxHEIGHT (A1111's seed resize)."),
]
BatchCountOpt = Annotated[
    int | None, typer.Option("--batch-count", help="Batches of --batch images, one after the other.")
]
PromptArg = Annotated[str, typer.Argument(help="What to draw (A1111 prompt syntax).")]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


#: Every option that shapes a request, in the order ``--help`` lists them.
REQUEST_OPTIONS: tuple[inspect.Parameter, ...] = (
    _option("negative", Negative, ""),
    _option("model", ModelOpt, None),
    _option("config", ConfigOpt, None),
    _option("size", SizeOpt, None),
    _option("width", WidthOpt, None),
    _option("height", HeightOpt, None),
    _option("steps", StepsOpt, None),
    _option("cfg", CfgOpt, None),
    _option("sampler", SamplerOpt, None),
    _option("schedule", ScheduleOpt, None),
    _option("seed", SeedOpt, None),
    _option("batch", BatchOpt, None),
    _option("clip_skip", ClipSkipOpt, None),
    _option("out", OutOpt, None),
    _option("name", NameOpt, None),
    _option("image_format", FormatOpt, None),
    _option("lora", LoraOpt, None),
    _option("init_image", InitOpt, None),
    _option("mask", MaskOpt, None),
    _option("strength", StrengthOpt, None),
    _option("resize_mode", ResizeOpt, None),
    _option("mask_blur", MaskBlurOpt, None),
    _option("inpaint_only_masked", FullResOpt, False),
    _option("inpaint_padding", PaddingOpt, None),
    _option("controlnet", ControlOpt, None),
    _option("control_type", ControlTypeOpt, None),
    _option("ip_adapter", IPOpt, None),
    _option("ip_adapter_weights", IPWeightOpt, "ip-adapter_sd15.safetensors"),
    _option("no_auto", NoAutoOpt, False),
    _option("no_learn", NoLearnOpt, False),
    _option("preset", PresetOpt, None),
    _option("memory", MemoryOpt, None),
    _option("hires", HiresOpt, None),
    _option("hires_scale", HiresScaleOpt, None),
    _option("hires_resize", HiresResizeOpt, None),
    _option("hires_steps", HiresStepsOpt, None),
    _option("hires_upscaler", HiresUpscalerOpt, None),
    _option("hires_denoise", HiresDenoiseOpt, None),
    _option("hires_sampler", HiresSamplerOpt, None),
    _option("hires_prompt", HiresPromptOpt, None),
    _option("hires_negative", HiresNegativeOpt, None),
    _option("hires_checkpoint", HiresCheckpointOpt, None),
    _option("refiner", RefinerOpt, None),
    _option("refiner_switch", RefinerSwitchOpt, None),
    _option("variation_seed", VariationSeedOpt, None),
    _option("variation_strength", VariationStrengthOpt, None),
    _option("seed_resize_from", SeedResizeOpt, None),
    _option("batch_count", BatchCountOpt, None),
)


def _request(prompt: str, v: dict[str, Any]) -> GenerationRequest:
    return build_request(
        prompt,
        negative_prompt=v["negative"],
        model=v["model"],
        config=v["config"],
        size=v["size"],
        width=v["width"],
        height=v["height"],
        steps=v["steps"],
        cfg_scale=v["cfg"],
        sampler=v["sampler"],
        schedule=v["schedule"],
        seed=v["seed"],
        auto=not v["no_auto"],
        learn=not v["no_learn"],
        preset=v["preset"] or "balanced",
        batch_size=v["batch"],
        clip_skip=v["clip_skip"],
        out=v["out"],
        name_template=v["name"],
        image_format=v["image_format"],
        loras=lora_requests(v["lora"]),
        init_image=v["init_image"],
        mask=v["mask"],
        strength=v["strength"],
        resize_mode=v["resize_mode"],
        mask_blur=v["mask_blur"],
        inpaint_full_res=v["inpaint_only_masked"],
        inpaint_padding=v["inpaint_padding"],
        controls=control_requests(v["controlnet"], v["control_type"]),
        ip_adapters=ip_requests(v["ip_adapter"], v["ip_adapter_weights"]),
        memory=v["memory"],
        **_pass_fields(v),
    )


def _pass_fields(v: dict[str, Any]) -> dict[str, Any]:
    """Hires fix, refiner, variation seed and batch count fields of the request (sizes parsed)."""
    return {
        "hires": v["hires"],
        "hires_scale": v["hires_scale"],
        "hires_resize": _sides(v["hires_resize"], "--hires-resize"),
        "hires_steps": v["hires_steps"],
        "hires_upscaler": v["hires_upscaler"],
        "hires_denoise": v["hires_denoise"],
        "hires_sampler": v["hires_sampler"],
        "hires_prompt": v["hires_prompt"],
        "hires_negative_prompt": v["hires_negative"],
        "hires_checkpoint": v["hires_checkpoint"],
        "refiner": v["refiner"],
        "refiner_switch": v["refiner_switch"],
        "variation_seed": v["variation_seed"],
        "variation_strength": v["variation_strength"],
        "seed_resize_from": _sides(v["seed_resize_from"], "--seed-resize-from"),
        "batch_count": v["batch_count"],
    }


def _sides(text: str | None, option: str) -> tuple[int, int] | None:
    """``"1024x0"`` → (1024, 0); ``-1`` (A1111's off) → None."""
    if text is None or text.strip() in ("-1", "-1x-1"):
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*", text)
    if not match:
        raise RequestError(f"{option} {text!r} is not WIDTHxHEIGHT, e.g. 1024x1024 (0 keeps the aspect).")
    return int(match.group(1)), int(match.group(2))


def request_command(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn(ctx, make_request, prompt, **own)`` as a typer command taking PROMPT and every request option.

    ``fn``'s own keyword options (after its first two parameters) follow the shared ones; ``make_request()``
    builds the request, so ``fn`` can call it where a bad value is reported as one line.
    """
    own = list(inspect.signature(fn, eval_str=True).parameters.values())[
        3:
    ]  # after ctx, make_request, prompt
    shared = [p.name for p in REQUEST_OPTIONS]

    @functools.wraps(fn)
    def command(ctx: typer.Context, prompt: str, **values: Any) -> None:
        fn(
            ctx,
            lambda: _request(prompt, {k: values[k] for k in shared}),
            prompt,
            **{p.name: values[p.name] for p in own},
        )

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [
        inspect.Parameter("ctx", positional, annotation=typer.Context),
        inspect.Parameter("prompt", positional, annotation=PromptArg),
    ]
    command.__signature__ = inspect.Signature([*params, *REQUEST_OPTIONS, *own])  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in (*params, *REQUEST_OPTIONS, *own)}
    del command.__wrapped__  # typer must read the signature above, not fn's
    return command
