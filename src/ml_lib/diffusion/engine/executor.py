"""Run a GenerationPlan on a loaded pipeline: encode, denoise, decode, each timed.

Noise is drawn on CPU generators seeded ``seed + i`` per image (A1111's rule), so an image
reproduces across devices and alone or within a batch; variation seeds and seed resize follow
:mod:`.seeds`, the hires fix :mod:`.hires`, the SDXL refiner :mod:`.refiner`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..catalog.families import Family
from ..errors import GenerationCancelled, OutOfMemory, RequestError, UnsupportedModelError
from ..plan import GenerationPlan
from ..planning.hires import hires_target
from ..result import CancelToken, Retry, StepInfo
from ..samplers import SamplerChoice
from ._oom import is_out_of_memory
from ._quiet import no_sde_rounding_warnings
from .adapters import apply_loras
from .compose import scheduled_conditioning_hooks
from .conditioning import encode_sd, encode_sdxl
from .control import control_image, load_controlnets
from .embeddings import apply_embeddings
from .finite import check_finite
from .hires import hires_pass
from .hires_refiner import hires_handoff
from .img2img_noise import given_noise, image_pass_noise
from .init_images import load_ref, prepare_init
from .inpaint_fill import latent_fill
from .ip_adapter import apply_ip_adapters
from .pages import prompt_returns, release_pages, trim_heap
from .preview import preview_png
from .recovery import decode_recovering
from .refiner import base_handoff, refine
from .schedule import Encoded, encode_schedule
from .schedulers import make_scheduler
from .seeds import batches, initial_noise
from .storage import release_scratch, upcast_added
from .threads import use_threads
from .variants import mode_of, pipeline_view

if TYPE_CHECKING:
    from PIL import Image

    from .peaks import PhaseMonitor
    from .pool import LoadedPipeline

__all__ = ["ExecutionOutput", "execute"]


@dataclass(frozen=True, slots=True)
class ExecutionOutput:
    """Images and per-phase seconds of one run."""

    images: tuple[Image.Image, ...]
    encode: float
    denoise: float
    decode: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _apply_scheduler(loaded: LoadedPipeline, plan: GenerationPlan) -> None:
    choice = SamplerChoice(plan.sampler, plan.schedule)
    key = (choice, plan.model.prediction_type)
    if loaded.scheduler != key:
        pipe = loaded.pipe
        if loaded.base_scheduler_config is None:
            loaded.base_scheduler_config = dict(pipe.scheduler.config)
        pipe.scheduler = make_scheduler(choice, loaded.base_scheduler_config, plan.model.prediction_type)
        loaded.scheduler = key


def _check_clip_skip(pipe: Any, plan: GenerationPlan) -> None:
    """RequestError when the plan skips more CLIP layers than the text encoders have (an edited plan)."""
    encoders = (getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None))
    counts = [getattr(e.config, "num_hidden_layers", None) for e in encoders if e is not None]
    layers = min((n for n in counts if isinstance(n, int)), default=None)
    if layers is not None and plan.clip_skip > layers:
        raise RequestError(
            f"clip skip {plan.clip_skip} is more than this model's text encoder has layers ({layers}); "
            f"use a clip skip of {layers} or less (1 = last layer)."
        )


def _encode(pipe: Any, plan: GenerationPlan, device: torch.device) -> dict[str, torch.Tensor]:
    sdxl = Family(plan.model.family) is Family.SDXL
    extra = {"zero_empty_negative": plan.sdxl_empty_negative == "zeros"} if sdxl else {}
    encode = encode_sdxl if sdxl else encode_sd
    return encode(
        pipe,
        plan.prompt,
        plan.negative_prompt,
        batch=plan.batch_size,
        clip_skip=plan.clip_skip,
        cfg=plan.cfg_scale > 1.0,
        device=device,
        **extra,
    )


def _conditioning(
    pipe: Any, view: Any, plan: GenerationPlan, device: torch.device, texts: dict[str, Encoded]
) -> tuple[dict[str, torch.Tensor], Callable[[], AbstractContextManager[None]]]:
    """The pipeline's embedding arguments, and a maker of the hooks that switch them during one sampling
    run when the plan has a prompt schedule (``engine/schedule.py``, ``engine/compose.py``); ``texts``
    keeps the encoded texts for the hires pass's schedule."""
    if plan.prompt_schedule is None:
        return _encode(pipe, plan, device), nullcontext
    scheduled = encode_schedule(pipe, plan, device, cache=texts)

    def hooks() -> AbstractContextManager[None]:
        return scheduled_conditioning_hooks(view, scheduled, cfg_scale=plan.cfg_scale)

    return scheduled.pipeline_kwargs(cfg=plan.cfg_scale > 1.0), hooks


def _decode(pipe: Any, latents: torch.Tensor, plan: GenerationPlan) -> list[Image.Image]:
    check_finite(latents, "latents", plan)
    vae = pipe.vae
    upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    with torch.inference_mode():
        if upcast:
            vae.to(torch.float32)
        latents = latents.to(vae.dtype)  # the compute dtype when weights are stored narrower
        mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
        if mean is not None and std is not None:
            m = torch.tensor(mean).view(1, -1, 1, 1).to(latents)
            s = torch.tensor(std).view(1, -1, 1, 1).to(latents)
            latents = latents * s / vae.config.scaling_factor + m
        else:
            latents = latents / vae.config.scaling_factor
        image = vae.decode(latents, return_dict=False)[0]
        if upcast:
            vae.to(torch.float16)
        check_finite(image, "decoded image", plan)
        return pipe.image_processor.postprocess(image, output_type="pil")


def execute(
    loaded: LoadedPipeline,
    plan: GenerationPlan,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    cancel: CancelToken | None = None,
    annotator_dir: Path | None = None,
    refiner: LoadedPipeline | None = None,
    monitor: PhaseMonitor | None = None,
    retries: list[Retry] | None = None,
    hires_model: LoadedPipeline | None = None,
) -> ExecutionOutput:
    """Generate the images of ``plan`` with the pooled pipeline ``loaded``; raises GenerationCancelled
    when ``cancel`` is set (checked before every step and before decoding). ``annotator_dir`` holds the
    weights of model-based ControlNet preprocessors (depth, lineart …); ``refiner`` is the loaded SDXL
    refiner of a plan that has one, ``hires_model`` the loaded hires checkpoint of a plan that names one.
    Batch count, hires fix and refiner run batch by batch. ``monitor`` measures each phase's peak memory;
    a decode retried tiled or in fp32 is appended to ``retries``."""
    recovered: list[Retry] = [] if retries is None else retries

    def watch(name: str) -> AbstractContextManager[None]:
        return monitor.phase(name) if monitor is not None else nullcontext()

    mode = mode_of(plan)
    if Family(plan.model.family) is Family.SDXL_REFINER and mode == "txt2img":
        raise UnsupportedModelError(
            "The SDXL refiner only refines existing images (img2img); choose an SDXL base model for txt2img."
        )
    pipe = loaded.pipe
    use_threads(plan.threads)
    _check_clip_skip(pipe, plan)
    device = pipe._execution_device
    cfg = plan.cfg_scale > 1.0
    _check(cancel)
    _apply_scheduler(loaded, plan)
    apply_loras(pipe, loaded.loras, plan.loras)
    if plan.storage_dtype is not None or plan.device == "cpu":  # LoRA layers made in a stored dtype (an fp16
        upcast_added(pipe, plan.dtype)  # file, an fp8 UNet) compute in fp32 like the rest
    apply_embeddings(pipe, loaded.embeddings, plan.embeddings)
    _check(cancel)
    ip_images = tuple(load_ref(u.image) for u in plan.ip_adapters)
    ip_kwargs = apply_ip_adapters(
        pipe, loaded.ip_adapters, plan.ip_adapters, ip_images, batch=plan.batch_size, cfg=cfg
    )
    second = _second_model(hires_model, plan)
    nets = load_controlnets(loaded, plan.controls, dtype=plan.dtype, device=plan.device)
    view = pipeline_view(loaded, mode, tuple(u.model for u in plan.controls), nets)
    prepared = prepare_init(plan)
    kwargs = {**ip_kwargs, **_control_kwargs(plan, mode, annotator_dir)}
    hires_kwargs = _hires_kwargs(plan, ip_kwargs, annotator_dir)
    # with the hires fix the refiner takes over inside the hires pass (None: after it, so never)
    hires_loaded = second or loaded  # the model the hires pass runs on
    h_pipe = hires_loaded.pipe
    hires_end = (
        hires_handoff(hires_loaded, plan) if plan.hires is not None and plan.refiner is not None else None
    )
    _check(cancel)

    def step_end(p: Any, i: int, _t: Any, kw: dict[str, Any]) -> dict[str, Any]:
        _check(cancel)
        if on_step is not None:
            latents = kw.get("latents")
            preview = None if latents is None else partial(preview_png, loaded, latents)
            on_step(StepInfo(i + 1, p.num_timesteps, preview))
        return kw

    phase = "encode"
    try:
        t0 = time.perf_counter()
        with watch("encode"):
            texts: dict[str, Encoded] = {}  # each distinct text encoded once for both passes
            embeds, hooks = _conditioning(pipe, view, plan, device, texts)
            hires_texts = texts if second is None else {}  # a hires checkpoint encodes with its own
            _sync(device)
            _hand_back(plan, getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None))
        encode_s = time.perf_counter() - t0
        images: list[Image.Image] = []
        denoise_s = decode_s = 0.0
        for seeds, subseeds in batches(plan):
            phase = "denoise"
            t1 = time.perf_counter()
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            noise, noising = _noise(view, plan, seeds, subseeds, generators)
            with no_sde_rounding_warnings(), watch("denoise"), prompt_returns(_on_stored_cpu(plan)):
                with hooks(), noising:  # a prompt schedule counts this run's denoiser calls only
                    latents = view(
                        **embeds,
                        **latent_fill(view, plan, prepared.kwargs, seeds),  # this batch's seeds
                        **kwargs,
                        **noise,
                        **base_handoff(plan),
                        num_inference_steps=plan.steps,
                        guidance_scale=plan.cfg_scale,
                        generator=generators,
                        output_type="latent",
                        callback_on_step_end=step_end,
                    ).images
                decoder = view
                if plan.hires is not None:
                    latents = hires_pass(
                        hires_loaded,
                        plan,
                        latents,
                        seeds,
                        base_embeds=embeds if second is None else None,
                        encode=lambda p, q: _encode(p, q, device),
                        schedule=lambda s: encode_schedule(
                            h_pipe, plan, device, schedule=s, cache=hires_texts
                        ),
                        decode=lambda p, x: _decode(p, x, plan),
                        step_end=step_end,
                        device=device,
                        subseeds=subseeds,
                        nets=nets,
                        extra=hires_kwargs,
                        denoising_end=hires_end,
                        first=view,
                    )
                    decoder = view if second is None else h_pipe  # A1111 decodes with the hires model
                if plan.refiner is not None and (plan.hires is None or hires_end is not None):
                    if refiner is None:
                        raise RequestError("This plan has a refiner; run it through ImageGenerator.execute.")
                    decoder, latents = refine(
                        refiner, plan, latents, generators, step_end=step_end, device=device
                    )
                _sync(device)
                _hand_back(plan, view.unet, getattr(view, "controlnet", None), decoder.unet)
                if second is not None:  # the hires checkpoint's text encoders ran in its pass
                    _hand_back(
                        plan, getattr(h_pipe, "text_encoder", None), getattr(h_pipe, "text_encoder_2", None)
                    )
            t2 = time.perf_counter()
            _check(cancel)
            phase = "decode"
            with watch("decode"):
                images += prepared.finish(decode_recovering(_decode, decoder, latents, plan, recovered))
                _sync(device)
                _hand_back(plan, decoder.vae)
            denoise_s, decode_s = denoise_s + t2 - t1, decode_s + time.perf_counter() - t2
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise OutOfMemory(
            f"Out of memory at {plan.width}x{plan.height}, batch {plan.batch_size}: use a smaller size or "
            f"batch, or close other programs (failed at {phase}).",
            phase,
        ) from exc
    return ExecutionOutput(tuple(images), encode_s, denoise_s, decode_s)


def _second_model(hires_model: LoadedPipeline | None, plan: GenerationPlan) -> LoadedPipeline | None:
    """The hires checkpoint's record made ready for the hires pass (None without one): the plan's LoRAs
    and embeddings applied to it too, as A1111 activates the networks again after reloading the weights."""
    checkpoint = plan.hires.checkpoint if plan.hires is not None else None
    if checkpoint is None:
        return None
    if hires_model is None:
        raise RequestError("This plan has a hires checkpoint; run it through ImageGenerator.execute.")
    pipe = hires_model.pipe
    _check_clip_skip(pipe, plan)
    apply_loras(pipe, hires_model.loras, plan.loras)
    if plan.storage_dtype is not None or plan.device == "cpu":
        upcast_added(pipe, plan.dtype)
    apply_embeddings(pipe, hires_model.embeddings, plan.embeddings)
    return hires_model


def _on_stored_cpu(plan: GenerationPlan) -> bool:
    """The CPU storage policy applies: weights kept as read from the file, computing on the CPU."""
    return plan.storage_dtype is not None and plan.device == "cpu"


def _hand_back(plan: GenerationPlan, *modules: torch.nn.Module | None) -> None:
    """Weights kept as read from the file (the CPU storage policy): the pages of a component whose phase
    is over go back to the OS (``engine/pages.py``), as does the heap the phase freed, so the peak holds
    one component, not all of them. The phase's scratch buffers for compute copies go in any case."""
    release_scratch(*modules)
    if _on_stored_cpu(plan):
        release_pages(*modules)
        trim_heap()


def _noise(
    view: Any, plan: GenerationPlan, seeds: tuple[int, ...], subseeds: tuple[int, ...], gens: list[Any]
) -> tuple[dict[str, torch.Tensor], AbstractContextManager[None]]:
    """A1111's variation / seed-resize noise: ``latents=`` in txt2img (the generators left where A1111
    leaves them), the scheduler's ``add_noise`` in img2img and inpaint (``engine/img2img_noise.py``);
    nothing without a variation, so diffusers draws the same noise from the same generators."""
    if plan.variation is None:
        return {}, nullcontext()
    factor = 2 ** (len(view.vae.config.block_out_channels) - 1)
    shape = (view.unet.config.in_channels, plan.height // factor, plan.width // factor)
    if plan.init is None:
        return {"latents": initial_noise(plan, shape, seeds, subseeds, gens, factor).to(view.unet.dtype)}, (
            nullcontext()
        )
    shape = (view.vae.config.latent_channels, *shape[1:])  # an inpainting UNet takes 9 channels
    noise = image_pass_noise(plan, shape, seeds, subseeds, factor)
    pure = plan.init.mask is not None and plan.init.strength >= 1.0  # diffusers' inpaint: latents = noise
    return ({"latents": noise.to(view.unet.dtype)} if pure else {}), given_noise(view, noise)


def _hires_kwargs(
    plan: GenerationPlan, ip_kwargs: dict[str, Any], annotator_dir: Path | None
) -> dict[str, Any]:
    """The hires pass's IP-Adapter embeddings and ControlNet units, their control images made at the
    hires size (as A1111's ControlNet extension resizes them for the second pass)."""
    if plan.hires is None:
        return {}
    target = hires_target(plan.width, plan.height, plan.hires)
    return {**ip_kwargs, **_control_kwargs(plan, "img2img", annotator_dir, (target.width, target.height))}


def _check(cancel: CancelToken | None) -> None:
    """Stop here when the cancel token is set (between steps and between loading phases); the exception
    raised in diffusers' step callback ends its denoising loop."""
    if cancel is not None and cancel.cancelled:
        raise GenerationCancelled("Generation was cancelled; no image was produced.")


def _control_kwargs(
    plan: GenerationPlan, mode: str, annotator_dir: Path | None, size: tuple[int, int] | None = None
) -> dict[str, Any]:
    if not plan.controls:
        return {}
    width, height = size or (plan.width, plan.height)
    images = [
        control_image(u, load_ref(u.image), width, height, annotator_dir=annotator_dir) for u in plan.controls
    ]
    one = len(plan.controls) == 1
    return {
        ("image" if mode == "txt2img" else "control_image"): images[0] if one else images,
        "controlnet_conditioning_scale": plan.controls[0].scale if one else [u.scale for u in plan.controls],
        "control_guidance_start": [u.guidance_start for u in plan.controls],
        "control_guidance_end": [u.guidance_end for u in plan.controls],
    }
