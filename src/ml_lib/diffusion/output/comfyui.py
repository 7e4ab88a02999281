"""The ComfyUI graph of one image of a plan: the API-format ``prompt`` and the UI ``workflow`` chunks.

ComfyUI's own ``SaveImage`` writes both PNG text chunks; ours carry the same generation built from core
nodes only, so ComfyUI opens the image and can queue it again::

    CheckpointLoaderSimple → LoraLoader (per LoRA) → CLIPSetLastLayer (clip skip) → CLIPTextEncode (twice)
      → [ControlNetLoader + LoadImage → ControlNetApplyAdvanced] per unit
    EmptyLatentImage | LoadImage → ImageScale → VAEEncode [→ LoadImageMask → SetLatentNoiseMask]
      → KSampler [→ hires fix: LatentUpscale | VAEDecode → ImageScale → VAEEncode, then KSampler]
      → VAEDecode → SaveImage        (a refiner: KSamplerAdvanced to the switch step, then the refiner's)

ComfyUI runs the same checkpoint, LoRAs, sampler, seed and size; it draws its noise and normalises
prompt weights its own way, so the pixels are not ours. Prompts are written by :mod:`.comfyui_prompts`:
BREAK as ``ConditioningConcat``, prompt editing and alternation as ``ConditioningSetTimestepRange``
ranges switching at A1111's sampler calls, ``AND`` as ``ConditioningSetAreaStrength`` parts with the CFG
scaled (the math is there), an SDXL empty negative our engine zeroes as ``ConditioningZeroOut``. Each
``KSampler`` gets the steps and denoise under which ComfyUI samples our engine's noise levels (img2img's
``int(steps x strength) + 1`` steps, DDIM's timesteps, the hires pass: :mod:`.comfyui_steps`), and each ControlNet
unit the percents that turn it on and off at our engine's calls. When a plan uses something ComfyUI's core
nodes cannot express (an IP-Adapter, a control preprocessor, a sampler ComfyUI lacks, a prompt schedule in
img2img or with the refiner, negative AND weights, inpainting only the masked area, resize-and-fill), no graph
is written and :func:`comfy_graph` says why. A1111's variation seed (and seed resize) has no core node either;
the graph is written without it and its workflow carries a ``Note`` saying so. Fields added to the plan later
extend :func:`_build` (see ``_UNEXPRESSED``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import PromptError
from ..plan import GenerationPlan
from ..prompt.syntax import parse_prompt
from ..samplers import SamplerChoice
from .comfyui_hires import add_hires, hires_unexpressed
from .comfyui_models import file_name, model_nodes
from .comfyui_names import to_comfy_sampler
from .comfyui_prompts import PromptEncoder, comfy_pieces
from .comfyui_refiner import add_refiner
from .comfyui_sigmas import Timeline, timeline
from .comfyui_steps import KSamplerRun, control_percents, ksampler_run
from .comfyui_workflow import api_to_workflow

__all__ = ["PROMPT_CHUNK", "WORKFLOW_CHUNK", "ComfyGraph", "comfy_chunks", "comfy_graph", "comfy_text"]

logger = logging.getLogger(__name__)

PROMPT_CHUNK = "prompt"
WORKFLOW_CHUNK = "workflow"
_MAX_CLIP_SKIP = 24  # CLIPSetLastLayer's stop_at_clip_layer goes down to -24
_CROP = {"just_resize": "disabled", "crop_and_resize": "center"}
#: Families whose checkpoints ComfyUI samples with ModelSamplingDiscrete over the SD betas.
_DISCRETE_FAMILIES = frozenset({"sd1", "sd2", "sdxl", "sdxl-refiner", "demo"})

Link = list[Any]  # [node id, output index], as ComfyUI writes it


@dataclass(frozen=True, slots=True)
class ComfyGraph:
    """An API-format graph (``{"1": {"class_type": …, "inputs": {…}}, …}``) or why there is none."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    reason: str | None = None
    #: What the graph leaves out of the generation (no core node does it), written as workflow notes.
    omitted: tuple[str, ...] = ()
    #: How the graph expresses what it does not write as A1111 writes it (a scaled CFG, step ranges).
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class _Builder:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, class_type: str, title: str, **inputs: Any) -> str:
        node_id = str(len(self.nodes) + 1)
        self.nodes[node_id] = {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}
        return node_id


def comfy_text(prompt: str, embeddings: tuple[str, ...] = ()) -> str:
    """``prompt`` as one ComfyUI CLIPTextEncode text (:func:`~.comfyui_prompts.comfy_pieces`).

    Raises :class:`ValueError` for what one CLIPTextEncode cannot say (editing, alternation, AND, BREAK).
    """
    document = parse_prompt(prompt)
    if document.is_composable or document.uses_editing or document.uses_alternation or document.uses_break:
        raise ValueError(
            "the prompt uses scheduling, alternation, AND or BREAK, which one CLIPTextEncode cannot express"
        )
    return comfy_pieces(document.text, embeddings)[0]


def _unexpressed(plan: GenerationPlan, choice: SamplerChoice) -> str | None:
    """Why ComfyUI's core nodes cannot run ``plan``, or None."""
    if to_comfy_sampler(choice) is None:
        return f"ComfyUI has no sampler {plan.sampler} with schedule {plan.schedule} that runs as ours"
    if plan.ip_adapters:
        return "ComfyUI's core nodes have no IP-Adapter"
    if any(unit.control_type != "none" for unit in plan.controls):
        return "a ControlNet preprocessor is not a ComfyUI core node"
    if not (0 <= plan.cfg_scale <= 100 and 1 <= plan.steps <= 10000 and 0 <= plan.seed < 2**64):
        return "CFG, steps or seed is outside the range of ComfyUI's KSampler"
    if any(not 0 <= unit.scale <= 10 for unit in plan.controls):
        return "a ControlNet weight is outside ControlNetApplyAdvanced's 0-10"
    if plan.clip_skip > _MAX_CLIP_SKIP:
        return f"clip skip {plan.clip_skip} is beyond CLIPSetLastLayer's {_MAX_CLIP_SKIP}"
    if plan.init is not None and plan.init.resize_mode not in _CROP:
        return f"resize mode {plan.init.resize_mode} has no ComfyUI core node"
    if plan.init is not None and plan.init.inpaint_full_res:
        return "inpainting only the masked area has no ComfyUI core node"
    if plan.init is not None and plan.init.inpainting_fill != "original":
        return f"masked content {plan.init.inpainting_fill!r} is not written into ComfyUI graphs yet"
    hires = hires_unexpressed(plan)
    if hires is not None:
        return hires
    if plan.refiner is not None and plan.hires is not None:
        return "the hires fix with a refiner (the refiner inside the hires pass) is not written into ComfyUI graphs"
    if plan.refiner is not None and not 0 < plan.refiner.switch_at < 1:
        return "a refiner switch outside (0, 1) has no KSamplerAdvanced step range"
    return None


def _omitted(plan: GenerationPlan, seed: int, subseed: int | None) -> tuple[str, ...]:
    """What a graph of ``plan`` leaves out: A1111's variation seed and seed resize (ComfyUI's core nodes
    draw one noise per seed, from the seed alone)."""
    v = plan.variation
    if v is None:
        return ()
    parts = []
    if v.strength:
        which = f"variation seed {subseed}" if subseed is not None else "the variation seed"
        parts.append(f"{which} at strength {v.strength:g}")
    if v.resize_width and v.resize_height:
        parts.append(f"seed resize from {v.resize_width}x{v.resize_height}")
    return (
        f"Not in this graph: A1111's {' and '.join(parts)}. ComfyUI's core nodes have no node for it (they "
        f"draw one noise per seed), so this graph samples seed {seed} alone.",
    )


def comfy_graph(plan: GenerationPlan, seed: int, subseed: int | None = None) -> ComfyGraph:
    """The API-format graph of the image of ``plan`` with ``seed`` (and variation seed ``subseed``), or a
    ComfyGraph with the reason; what it leaves out is in ``omitted``."""
    choice = SamplerChoice(plan.sampler, plan.schedule)
    reason = _unexpressed(plan, choice)
    if reason is not None:
        return ComfyGraph(reason=reason)
    try:
        notes: list[str] = []
        nodes = _build(plan, seed, choice, notes)
        return ComfyGraph(nodes, omitted=_omitted(plan, seed, subseed), notes=tuple(dict.fromkeys(notes)))
    except (ValueError, PromptError) as exc:  # a prompt (or hires prompt) the core nodes cannot say
        return ComfyGraph(reason=str(exc))


def _timeline(plan: GenerationPlan, sampler: tuple[str, str], run: KSamplerRun) -> Timeline:
    """The ComfyUI calls of one sampler pass of ``plan``, for prompt step ranges and ControlNet percents."""
    if plan.model.family not in _DISCRETE_FAMILIES:
        raise ValueError(f"ComfyUI's noise levels for a {plan.model.family} model are not known here")
    return timeline(sampler[0], sampler[1], run.steps, run.denoise)


def _first_timeline(plan: GenerationPlan, sampler: tuple[str, str], run: KSamplerRun) -> Timeline:
    """The first pass's calls. In img2img and inpainting A1111 (and our engine) build the prompt schedule
    over all the plan's steps and index it by the calls of the run, counted from 0 (``setup_conds``, the
    CFG denoiser's ``step``): the run's calls are the first ones the schedule counts."""
    line = _timeline(plan, sampler, run)
    if plan.init is None:
        return line
    return replace(line, counted=line.counted // run.steps * plan.steps)


def _run(plan: GenerationPlan, sampler: tuple[str, str], total: int, run: int) -> KSamplerRun:
    """The KSampler steps and denoise of a pass that runs the last ``run`` of ``total`` steps."""
    discrete = plan.model.family in _DISCRETE_FAMILIES
    return ksampler_run(sampler[0], sampler[1], total, run, discrete=discrete)


def _first_run(plan: GenerationPlan, sampler: tuple[str, str]) -> KSamplerRun:
    """The first pass: all steps, or (img2img, inpainting) A1111's ``int(steps x strength) + 1`` of them."""
    total = plan.steps
    run = total if plan.init is None else plan.init.steps_run(total)
    return _run(plan, sampler, total, run)


def _hires_run(plan: GenerationPlan, sampler: tuple[str, str]) -> KSamplerRun:
    """The hires pass: its ``k`` steps of the ``int(k / min(denoise, 0.999))`` our engine runs them in
    (``planning.hires.hires_schedule``, which ``output`` may not import; a test holds the two equal)."""
    assert plan.hires is not None
    run = plan.hires.steps or plan.steps
    return _run(plan, sampler, int(run / min(plan.hires.denoise, 0.999)), run)


def _zero_empty_negative(plan: GenerationPlan) -> bool:
    """Our engine conditions an SDXL model on zeros for an empty negative prompt (``sdxl_empty_negative``
    "zeros", diffusers' ``force_zeros_for_empty_prompt``); the graph then zeroes it too."""
    return plan.model.family == "sdxl" and plan.sdxl_empty_negative == "zeros"


def _refiner_texts(plan: GenerationPlan, names: tuple[str, ...]) -> tuple[str, str]:
    try:
        return comfy_text(plan.prompt, names), comfy_text(plan.negative_prompt, names)
    except ValueError as exc:
        raise ValueError(
            "a prompt schedule, AND or BREAK with the SDXL refiner is not written into ComfyUI graphs"
        ) from exc


def _build(plan: GenerationPlan, seed: int, choice: SamplerChoice, notes: list[str]) -> dict[str, Any]:
    g = _Builder()
    model, clip, vae = model_nodes(g.add, plan, plan.model)
    comfy_sampler = to_comfy_sampler(choice)
    assert comfy_sampler is not None  # checked by _unexpressed
    names = tuple(e.name for e in plan.embeddings)
    first_run = _first_run(plan, comfy_sampler)
    encoder = PromptEncoder(g.add, clip, names, zero_empty_negative=_zero_empty_negative(plan))
    first = encoder.conditioning(
        plan.prompt_schedule,
        (plan.prompt, plan.negative_prompt),
        plan.cfg_scale,
        timeline=lambda: _first_timeline(plan, comfy_sampler, first_run),
        controls=bool(plan.controls),
    )
    notes += first.notes
    units: list[tuple[str, str]] = []  # (ControlNetLoader, LoadImage) of each unit, made once

    def control(pos: Link, neg: Link, line: Callable[[], Timeline]) -> tuple[Link, Link]:
        """The units applied to (pos, neg), switched on and off at our engine's calls of the pass."""
        for i, unit in enumerate(plan.controls):
            percents = (0.0, 1.0)
            if (unit.guidance_start, unit.guidance_end) != percents:
                percents = control_percents(unit.guidance_start, unit.guidance_end, line())
            if i == len(units):
                name = file_name(unit.model, unit.name)
                units.append(
                    (
                        g.add("ControlNetLoader", "ControlNet", control_net_name=name),
                        g.add("LoadImage", "Control image", image=file_name(unit.image.path)),
                    )
                )
            apply = g.add(
                "ControlNetApplyAdvanced",
                "Apply ControlNet",
                positive=pos,
                negative=neg,
                control_net=[units[i][0], 0],
                image=[units[i][1], 0],
                strength=unit.scale,
                start_percent=percents[0],
                end_percent=percents[1],
            )
            pos, neg = [apply, 0], [apply, 1]
        return pos, neg

    pos, neg = control(first.positive, first.negative, lambda: _timeline(plan, comfy_sampler, first_run))
    latent = _latent(g, plan, vae)
    final: Link
    if plan.refiner is not None:  # with the hires fix: no graph (_unexpressed)
        if first_run != KSamplerRun(plan.steps, 1.0):
            raise ValueError(
                f"the refiner's KSamplerAdvanced passes run ComfyUI's whole {comfy_sampler[1]} schedule of "
                f"{plan.steps} steps, which is not ours (img2img, or DDIM at this step count)"
            )
        final, vae = add_refiner(
            g.add, plan, seed, comfy_sampler, (model, pos, neg, latent), _refiner_texts(plan, names)
        )
        return _save(g, final, vae)
    sampled = g.add(
        "KSampler",
        "KSampler",
        model=model,
        seed=seed,
        steps=first_run.steps,
        cfg=first.cfg,
        sampler_name=comfy_sampler[0],
        scheduler=comfy_sampler[1],
        positive=pos,
        negative=neg,
        latent_image=latent,
        denoise=first_run.denoise,
    )
    final = [sampled, 0]
    if plan.hires is not None:
        hires = plan.hires

        sampler = to_comfy_sampler(
            SamplerChoice(hires.sampler or plan.sampler, hires.schedule or plan.schedule)
        )
        assert sampler is not None  # checked by hires_unexpressed
        hires_run = _hires_run(plan, sampler)

        def hires_line() -> Timeline:
            return _timeline(plan, sampler, hires_run)

        hires_nodes, hires_encoder = (model, clip, vae), encoder
        if hires.checkpoint is not None:  # A1111's "Hires checkpoint": its own loader, LoRAs and encodes
            hires_nodes = model_nodes(g.add, plan, hires.checkpoint, "Load Hires Checkpoint")
            zero = _zero_empty_negative(plan)
            hires_encoder = PromptEncoder(g.add, hires_nodes[1], names, zero_empty_negative=zero)

        def conditioning() -> tuple[Link, Link, float]:
            """The first pass's, or the hires pass's prompts (its own schedule over its own steps) with the
            ControlNets applied again (ComfyUI resizes each control image to the latent it samples, as
            A1111's extension does)."""
            same = not (
                hires.prompt or hires.negative_prompt or hires.prompt_schedule or plan.prompt_schedule
            )
            if same and hires.checkpoint is None:
                if all((u.guidance_start, u.guidance_end) == (0.0, 1.0) for u in plan.controls):
                    return pos, neg, first.cfg  # the units apply at every call of either pass
                return (*control(first.positive, first.negative, hires_line), first.cfg)
            second = hires_encoder.conditioning(
                hires.prompt_schedule,
                (hires.prompt or plan.prompt, hires.negative_prompt or plan.negative_prompt),
                plan.cfg_scale,
                timeline=hires_line,
                controls=bool(plan.controls),
                titles=("Hires prompt", "Hires negative prompt"),
            )
            notes.extend(second.notes)
            return (*control(second.positive, second.negative, hires_line), second.cfg)

        run = (hires_run.steps, hires_run.denoise)
        final = add_hires(g.add, plan, seed, final, hires_nodes, run, conditioning, first_vae=vae)
        vae = hires_nodes[2]  # A1111 decodes with the model the hires pass ran on
    return _save(g, final, vae)


def _save(g: _Builder, latent: Link, vae: Link) -> dict[str, Any]:
    decoded = g.add("VAEDecode", "VAE Decode", samples=latent, vae=vae)
    g.add("SaveImage", "Save Image", images=[decoded, 0], filename_prefix="ml-diffusion")
    return g.nodes


def _latent(g: _Builder, plan: GenerationPlan, vae: Link) -> Link:
    """The starting latent (empty, or the init image encoded, masked for inpainting)."""
    init = plan.init
    if init is None:
        return [
            g.add(
                "EmptyLatentImage", "Empty Latent Image", width=plan.width, height=plan.height, batch_size=1
            ),
            0,
        ]
    loaded = g.add("LoadImage", "Init image", image=file_name(init.image.path))
    scaled = g.add(
        "ImageScale",
        "Resize init image",
        image=[loaded, 0],
        upscale_method="lanczos",
        width=plan.width,
        height=plan.height,
        crop=_CROP[init.resize_mode],
    )
    latent: Link = [g.add("VAEEncode", "VAE Encode", pixels=[scaled, 0], vae=vae), 0]
    if init.mask is not None:
        mask = g.add(
            "LoadImageMask", "Mask (white = repaint)", image=file_name(init.mask.path), channel="red"
        )
        latent = [g.add("SetLatentNoiseMask", "Set Latent Noise Mask", samples=latent, mask=[mask, 0]), 0]
    return latent


def comfy_chunks(plan: GenerationPlan, seed: int, subseed: int | None = None) -> tuple[tuple[str, str], ...]:
    """The ``prompt`` and ``workflow`` PNG text chunks for one image (its variation seed ``subseed``), or ()
    (logged) when ComfyUI's core nodes cannot express the plan; the workflow notes what the graph omits."""
    graph = comfy_graph(plan, seed, subseed)
    if graph.reason is not None:
        logger.info("No ComfyUI graph in the image: %s.", graph.reason)
        return ()
    workflow = api_to_workflow(graph.nodes, graph.omitted + graph.notes)
    return (
        (PROMPT_CHUNK, json.dumps(graph.nodes)),  # ASCII, as ComfyUI writes it: plain tEXt chunks
        (WORKFLOW_CHUNK, json.dumps(workflow)),
    )
