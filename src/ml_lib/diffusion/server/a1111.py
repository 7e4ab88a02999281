"""AUTOMATIC1111-compatible routes (``/sdapi/v1``), shapes as in A1111 1.10, so existing clients work."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
from fastapi import APIRouter, Depends

from ..errors import InputImageError, ModelNotFoundError, RequestError
from ..request import GenerationRequest
from ..result import CancelToken, StepInfo
from ..samplers import AUTOMATIC, SAMPLERS, SCHEDULES, parse_sampler
from .a1111_models import Img2ImgBody, OptionsBody, PngInfoBody, Txt2ImgBody
from .a1111_passes import pass_fields
from .controlnet import control_units
from .limits import check_generation, decode_image, prompt_names
from .state import ServerState, state

if TYPE_CHECKING:
    from ..catalog.records import ModelRecord
    from ..facade import ImageGenerator
    from ..result import GenerationResult

__all__ = ["router"]

router = APIRouter(prefix="/sdapi/v1", tags=["a1111"])
_RESIZE = {0: "just_resize", 1: "crop_and_resize", 2: "resize_and_fill", 3: "just_resize"}
_FILL = {0: "fill", 1: "original", 2: "latent_noise", 3: "latent_nothing"}  # A1111's inpainting_fill


def _request(body: Txt2ImgBody, st: ServerState, **extra: Any) -> GenerationRequest:
    """The GenerationRequest a body asks for, its limits and sampler checked before anything is queued."""
    batch = body.batch_size * body.n_iter
    check_generation(
        st.limits, prompt=body.prompt, negative=body.negative_prompt, width=body.width,
        height=body.height, steps=body.steps, batch=batch,
    )  # fmt: skip
    prompt_names(body.prompt, body.negative_prompt)
    sampler = body.sampler_name or body.sampler_index
    schedule = None if body.scheduler in (None, AUTOMATIC) else body.scheduler
    if sampler:
        parse_sampler(sampler, schedule)  # UnknownSamplerError → 422
    model = body.override_settings.get("sd_model_checkpoint") or st.model
    controls = control_units(body.alwayson_scripts, st.limits, extra.get("init_image"))
    return GenerationRequest(
        prompt=body.prompt, negative_prompt=body.negative_prompt, model=_strip_hash(model),
        width=body.width, height=body.height, steps=body.steps, cfg_scale=body.cfg_scale,
        sampler=sampler or None, schedule=schedule, seed=None if body.seed < 0 else body.seed,
        batch_size=body.batch_size, controls=controls, **pass_fields(body), **extra,
    )  # fmt: skip


def _strip_hash(title: str | None) -> str | None:
    """``"name [abc123]"`` (an A1111 title) → ``"name"``."""
    if not title:
        return None
    return title.rsplit(" [", 1)[0] if title.endswith("]") else title


def _info(result: GenerationResult, body: Txt2ImgBody, infotexts: list[str]) -> str:
    plan = result.plan
    return json.dumps({
        "prompt": body.prompt, "all_prompts": [body.prompt] * len(result.seeds),
        "negative_prompt": plan.negative_prompt, "all_negative_prompts": [plan.negative_prompt] * len(result.seeds),
        "seed": plan.seed, "all_seeds": list(result.seeds),
        "subseed": plan.variation.seed if plan.variation else -1,
        "subseed_strength": plan.variation.strength if plan.variation else 0,
        "all_subseeds": list(plan.subseeds) or [-1] * len(result.seeds),
        "width": plan.width, "height": plan.height, "sampler_name": plan.sampler, "scheduler": plan.schedule,
        "cfg_scale": plan.cfg_scale, "steps": plan.steps, "batch_size": len(result.seeds),
        "sd_model_name": plan.model.name, "clip_skip": plan.clip_skip, "infotexts": infotexts,
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "generation_id": result.generation_id,
    }, ensure_ascii=False)  # fmt: skip


async def _run(st: ServerState, req: GenerationRequest, body: Txt2ImgBody, job: str) -> dict[str, Any]:
    def work(
        gen: ImageGenerator, on_step: Callable[[StepInfo], None], cancel: CancelToken
    ) -> GenerationResult:
        return gen.generate(req, on_step=on_step, cancel=cancel)

    result = await st.worker.generate(job, work)
    from ..output.metadata import read_metadata

    images, infotexts = [], []
    for path in result.paths:
        data = Path(path).read_bytes()
        images.append(base64.b64encode(data).decode("ascii") if body.send_images else "")
        infotexts.append(read_metadata(path).infotext or "")
    params = body.model_dump()
    params.pop("init_images", None)
    params.pop("mask", None)
    return {
        "images": images if body.send_images else [],
        "parameters": params,
        "info": _info(result, body, infotexts),
    }


async def known_checkpoint(st: ServerState, name: str) -> str:
    """``name`` when it is a usable checkpoint's name or sub-path (never a file path or Hub id from a
    client), else ModelNotFoundError (404)."""
    records = await st.worker.call(lambda g: _records(g, "checkpoint"))
    if not any(name in (r.name, r.rel_name) for r in records):
        names = ", ".join(sorted(r.name for r in records)[:20])
        raise ModelNotFoundError(
            f"No checkpoint named {name!r}; GET /sdapi/v1/sd-models lists them ({names})."
        )
    return name


async def _checked(st: ServerState, req: GenerationRequest) -> GenerationRequest:
    if req.model is not None and req.model != st.model:
        await known_checkpoint(st, req.model)
    return req


@router.post("/txt2img")
async def txt2img(body: Txt2ImgBody, st: ServerState = Depends(state)) -> dict[str, Any]:
    """``TextToImageResponse``: base64 images, the request's parameters, ``info`` (JSON with infotexts)."""
    return await _run(st, await _checked(st, _request(body, st)), body, "txt2img")


@router.post("/img2img")
async def img2img(body: Img2ImgBody, st: ServerState = Depends(state)) -> dict[str, Any]:
    """``ImageToImageResponse``; the first init image is used, ``mask`` makes it an inpainting (with
    ``inpainting_fill`` 0 fill, 1 original, 2 latent noise, 3 latent nothing, as A1111)."""
    if not body.init_images:
        raise InputImageError("init_images is empty; send at least one base64 image.")
    init = decode_image(body.init_images[0], "init_images[0]", st.limits)
    mask = decode_image(body.mask, "mask", st.limits) if body.mask else None
    if body.inpainting_fill not in _FILL:
        raise RequestError(f"inpainting_fill {body.inpainting_fill} is not 0 (fill), 1 (original), "
                           "2 (latent noise) or 3 (latent nothing).")  # fmt: skip
    req = _request(
        body, st, init_image=init, mask=mask, strength=body.denoising_strength,
        resize_mode=_RESIZE.get(body.resize_mode, "just_resize"), mask_blur=body.mask_blur,
        inpaint_full_res=body.inpaint_full_res, inpaint_padding=body.inpaint_full_res_padding,
        inpainting_fill=_FILL[body.inpainting_fill] if mask is not None else None,
    )  # fmt: skip
    return await _run(st, await _checked(st, req), body, "img2img")


@router.post("/png-info")
async def png_info(body: PngInfoBody, st: ServerState = Depends(state)) -> dict[str, Any]:
    """``PNGInfoResponse``: the infotext, its parsed items and parameters."""
    import io

    from ..output.metadata import read_metadata

    meta = read_metadata(io.BytesIO(decode_image(body.image, "image", st.limits)))
    params: dict[str, Any] = {}
    if meta.parsed is not None:
        params = {"Prompt": meta.parsed.prompt, "Negative prompt": meta.parsed.negative_prompt}
        params.update(dict(meta.parsed.parameters))
    items = {"parameters": meta.infotext} if meta.infotext else {}
    return {"info": meta.infotext or "", "items": items, "parameters": params}


def _records(gen: ImageGenerator, kind: str) -> tuple[ModelRecord, ...]:
    from ..catalog.records import ModelKind
    from ..resolve.known import KnownModels

    return KnownModels(gen.catalog()).usable((ModelKind(kind),))


@router.get("/sd-models")
async def sd_models(st: ServerState = Depends(state)) -> list[dict[str, Any]]:
    """Usable checkpoints (catalog, then built-ins) as ``SDModelItem``s."""
    records = await st.worker.call(lambda g: _records(g, "checkpoint"))
    return [
        {"title": f"{r.name} [{r.hashes.autov2}]" if r.hashes.autov2 else r.name, "model_name": r.name,
         "hash": r.hashes.autov2, "sha256": r.hashes.sha256, "filename": r.path, "config": None}
        for r in records
    ]  # fmt: skip


@router.get("/loras")
async def loras(st: ServerState = Depends(state)) -> list[dict[str, Any]]:
    """Usable LoRAs (name, alias, path, metadata)."""
    records = await st.worker.call(lambda g: _records(g, "lora"))
    return [{"name": r.name, "alias": r.name, "path": r.path, "metadata": {}} for r in records]


@router.get("/embeddings")
async def embeddings(st: ServerState = Depends(state)) -> dict[str, Any]:
    """``EmbeddingsResponse``: usable textual-inversion embeddings."""
    records = await st.worker.call(lambda g: _records(g, "embedding"))
    loaded = {r.name: {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None,
                       "shape": None, "vectors": None} for r in records}  # fmt: skip
    return {"loaded": loaded, "skipped": {}}


@router.get("/samplers")
async def samplers() -> list[dict[str, Any]]:
    """``SamplerItem``s."""
    return [{"name": s.name, "aliases": list(s.aliases), "options": {}} for s in SAMPLERS.values()]


@router.get("/schedulers")
async def schedulers() -> list[dict[str, Any]]:
    """``SchedulerItem``s (``Automatic`` first)."""
    names = (AUTOMATIC, *SCHEDULES)
    return [{"name": n.lower().replace(" ", "_"), "label": n, "aliases": None, "default_rho": -1,
             "need_inner_model": False} for n in names]  # fmt: skip


@router.get("/options")
async def get_options(st: ServerState = Depends(state)) -> dict[str, Any]:
    """The subset of A1111's options we have."""
    return {"sd_model_checkpoint": st.model or "", "samples_format": "png", "CLIP_stop_at_last_layers": 1}


@router.post("/options")
async def set_options(body: OptionsBody, st: ServerState = Depends(state)) -> None:
    """``sd_model_checkpoint`` switches the model (checked now: an unknown name is a 404)."""
    name = _strip_hash(body.sd_model_checkpoint)
    if name is None:
        return
    st.model = await known_checkpoint(st, name)


@router.get("/progress")
async def progress(skip_current_image: bool = False, st: ServerState = Depends(state)) -> dict[str, Any]:
    """``ProgressResponse``; ``current_image`` is a base64 PNG of the running job's latest preview (its
    latents drawn cheaply, at most every half second, while someone polls), null when idle or skipped."""
    if not skip_current_image:
        st.worker.watch()
    p = st.worker.progress
    state_ = {"skipped": False, "interrupted": p.interrupted, "stopping_generation": False, "job": p.job,
              "job_count": p.queued + (1 if p.job else 0), "job_timestamp": "0", "job_no": 0,
              "sampling_step": p.step, "sampling_steps": p.total}  # fmt: skip
    preview = p.preview
    image = None if skip_current_image or preview is None else base64.b64encode(preview).decode("ascii")
    return {"progress": p.fraction, "eta_relative": p.eta, "state": state_, "current_image": image,
            "textinfo": None, "current_task": p.job or None}  # fmt: skip


@router.post("/interrupt")
async def interrupt(st: ServerState = Depends(state)) -> dict[str, Any]:
    """Stop the running generation between two steps (its request answers 409)."""
    st.worker.interrupt()
    return {}


@router.post("/skip")
async def skip(st: ServerState = Depends(state)) -> None:
    """Like ``/interrupt`` (a batch is one job here)."""
    st.worker.interrupt()


@router.post("/refresh-checkpoints")
async def refresh_checkpoints(st: ServerState = Depends(state)) -> None:
    """Rescan the model folders."""
    await st.worker.call(lambda g: g.catalog().scan())


@router.post("/refresh-loras")
async def refresh_loras(st: ServerState = Depends(state)) -> None:
    """Rescan the model folders (LoRAs are catalogued with the rest)."""
    await st.worker.call(lambda g: g.catalog().scan())


@router.get("/memory")
async def memory() -> dict[str, Any]:
    """``MemoryResponse``: system RAM; CUDA is reported as unavailable here (no torch in the route)."""
    vm = psutil.virtual_memory()
    ram = {"free": vm.available, "used": vm.total - vm.available, "total": vm.total}
    return {"ram": ram, "cuda": {"error": "not reported"}}
