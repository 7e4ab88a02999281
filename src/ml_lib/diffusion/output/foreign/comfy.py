"""A ComfyUI graph (the API ``prompt`` chunk, else the UI ``workflow``) → :class:`ForeignMetadata`.

The first sampling pass is read: the ``KSampler`` (or ``KSamplerAdvanced``) whose latent does not come
from another sampler, its checkpoint and LoRA loaders, CLIP skip, the two prompts (CLIPTextEncode texts,
with the BREAK, prompt editing and AND shapes our graphs write read back into A1111's syntax:
:mod:`.comfy_conditioning`) and the empty latent's size. Values wired from primitive nodes are followed.
Anything else on those paths (a ControlNet, an img2img encode, a model patch, a second pass) is listed as
unmapped with the node.
A malformed graph raises :class:`ForeignMetadataError` (one line), never another exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from ...errors import ForeignMetadataError
from ..comfyui_names import from_comfy_sampler
from ..comfyui_sigmas import Timeline, timeline
from ..comfyui_steps import KSamplerRun, ksampler_run
from ..comfyui_workflow import workflow_to_api
from ._values import as_float, as_int, as_text
from .comfy_conditioning import MAPPED, read_prompt
from .records import ForeignLora, ForeignMetadata, Unmapped

__all__ = ["MAX_NODES", "read_comfy_prompt", "read_comfy_workflow"]

#: A graph with more nodes is refused (real workflows have tens to a few hundred).
MAX_NODES = 5000
_MAX_WALK = 200  # nodes followed along one input chain
_MAX_STEPS = 10000  # KSampler's steps input goes up to 10000
_SAMPLERS = ("KSampler", "KSamplerAdvanced")
_CHECKPOINTS = ("CheckpointLoaderSimple", "CheckpointLoader", "unCLIPCheckpointLoader")
_TEXT_ENCODERS = ("CLIPTextEncode", "CLIPTextEncodeSDXL")
_EMPTY_LATENTS = ("EmptyLatentImage", "EmptySD3LatentImage")
_PRIMITIVE_KEYS = ("value", "seed", "int", "float", "string", "text", "Number", "noise_seed")

Graph = dict[str, dict[str, Any]]


def _checked(graph: Any, what: str) -> Graph:
    """The graph as ``{id: {"class_type": str, "inputs": dict}}``; ForeignMetadataError when it is not."""
    if not isinstance(graph, Mapping):
        raise ForeignMetadataError(f"The ComfyUI {what} in the image is not a JSON object of nodes.")
    if len(graph) > MAX_NODES:
        raise ForeignMetadataError(
            f"The ComfyUI {what} has {len(graph)} nodes (more than {MAX_NODES}); not read."
        )
    nodes: Graph = {}
    for key, node in graph.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            raise ForeignMetadataError(
                f"ComfyUI {what} node {str(key)[:40]!r} has no class_type; the graph is malformed."
            )
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping):
            raise ForeignMetadataError(
                f"ComfyUI {what} node {str(key)[:40]!r} has inputs that are not an object."
            )
        nodes[str(key)] = {"class_type": node["class_type"], "inputs": dict(inputs)}
    return nodes


def read_comfy_prompt(graph: Any) -> ForeignMetadata:
    """Settings of an API-format graph (the ``prompt`` chunk)."""
    return _read(_checked(graph, "prompt graph"), "prompt")


def read_comfy_workflow(workflow: Any) -> ForeignMetadata:
    """Settings of a UI workflow (the ``workflow`` chunk), for images that carry no API graph."""
    if not isinstance(workflow, Mapping):
        raise ForeignMetadataError("The ComfyUI workflow in the image is not a JSON object.")
    nodes = workflow.get("nodes")
    if isinstance(nodes, list) and len(nodes) > MAX_NODES:
        raise ForeignMetadataError(
            f"The ComfyUI workflow has {len(nodes)} nodes (more than {MAX_NODES}); not read."
        )
    try:
        graph = workflow_to_api(workflow)
    except ValueError as exc:
        raise ForeignMetadataError(f"The ComfyUI workflow in the image is malformed: {exc}.") from exc
    return _read(_checked(graph, "workflow"), "workflow")


def _link(value: Any) -> tuple[str, int] | None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[1], int)
        and isinstance(value[0], (str, int))
    ):
        return str(value[0]), value[1]
    return None


class _Reader:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.unmapped: list[Unmapped] = []
        self.noted: set[str] = set()

    def note(self, node_id: str, reason: str, value: str = "") -> None:
        node = self.graph.get(node_id, {})
        key = f"node {node_id} ({node.get('class_type', '?')})"
        if key not in self.noted:
            self.noted.add(key)
            self.unmapped.append(Unmapped(key, value, reason))

    def value(self, node_id: str, name: str) -> Any:
        """An input's value, following links to primitive nodes (None when it leads elsewhere)."""
        raw = self.graph[node_id]["inputs"].get(name)
        for _ in range(_MAX_WALK):
            link = _link(raw)
            if link is None:
                return raw
            source = self.graph.get(link[0])
            if source is None:
                return None
            inputs = source["inputs"]
            found = [inputs[k] for k in _PRIMITIVE_KEYS if k in inputs]
            if not found and isinstance(inputs.get("widgets_values"), list) and inputs["widgets_values"]:
                found = [inputs["widgets_values"][0]]
            if not found:
                return None
            raw = found[0]
        return None

    def upstream(self, node_id: str, name: str) -> str | None:
        link = _link(self.graph[node_id]["inputs"].get(name))
        return link[0] if link is not None and link[0] in self.graph else None


def _first_pass(reader: _Reader) -> str | None:
    samplers = [i for i, n in reader.graph.items() if n["class_type"] in _SAMPLERS]
    first = None
    for node_id in samplers:
        latent = reader.upstream(node_id, "latent_image")
        chain: set[str] = set()
        while latent is not None and latent not in chain and len(chain) < _MAX_WALK:
            chain.add(latent)
            if reader.graph[latent]["class_type"] in _SAMPLERS:
                break
            inputs = reader.graph[latent]["inputs"]
            latent = next(
                (link[0] for v in inputs.values() if (link := _link(v)) and link[0] in reader.graph), None
            )
        if latent is None or reader.graph[latent]["class_type"] not in _SAMPLERS:
            first = first or node_id
    for node_id in samplers:
        if node_id != first:
            reader.note(node_id, "a second sampling pass (hires fix / refiner) is not in the plan yet")
    return first


def _read(graph: Graph, source: str) -> ForeignMetadata:
    reader = _Reader(graph)
    sampler_id = _first_pass(reader)
    if sampler_id is None:
        return ForeignMetadata(
            "ComfyUI",
            source,
            unmapped=(Unmapped("graph", "", "no KSampler node: custom sampling nodes are not read"),),
        )
    node = graph[sampler_id]
    advanced = node["class_type"] == "KSamplerAdvanced"
    seed = as_int(reader.value(sampler_id, "noise_seed" if advanced else "seed"))
    raw_sampler = as_text(reader.value(sampler_id, "sampler_name"))
    raw_scheduler = as_text(reader.value(sampler_id, "scheduler"))
    sampler = schedule = None
    if raw_sampler is not None:
        choice, note = from_comfy_sampler(raw_sampler, raw_scheduler)
        if choice is not None:
            sampler, schedule = choice.sampler, choice.schedule
        if note is not None:
            reader.unmapped.append(Unmapped("sampler", f"{raw_sampler} / {raw_scheduler}", note))
    denoise = as_float(reader.value(sampler_id, "denoise"))
    steps, cfg = as_int(reader.value(sampler_id, "steps")), as_float(reader.value(sampler_id, "cfg"))
    if denoise is not None and denoise < 1.0 and not _whole_run(reader, sampler_id, steps, denoise):
        reader.unmapped.append(
            Unmapped(
                "denoise", f"{denoise:g}", "img2img needs the source image, which the file does not carry"
            )
        )
    for name, value in (("seed", seed), ("steps", steps), ("cfg", cfg)):
        if value is None:
            reader.unmapped.append(Unmapped(name, "", "not recorded as a number the graph states"))
    model, loras = _model(reader, reader.upstream(sampler_id, "model"))
    clip_skip = None

    def line() -> Timeline:
        if advanced or raw_sampler is None or raw_scheduler is None or steps is None:
            raise ValueError(
                "the graph's sampler pass is not a KSampler with its sampler, scheduler and steps"
            )
        return timeline(raw_sampler, raw_scheduler, steps, 1.0 if denoise is None else denoise)

    prompts = []
    for key in ("positive", "negative"):
        read = read_prompt(reader, node["inputs"].get(key), line, negative=key == "negative")
        if read.text is None:
            reader.unmapped.append(Unmapped(f"{key} prompt", "", f"{read.reason}; the first text is used"))
            read = dataclasses.replace(
                read, text=_a1111_literal(_text(reader, reader.upstream(sampler_id, key)) or "")
            )
        prompts.append(read)
    if prompts[0].weight_sum is not None and cfg is not None:
        cfg = round(cfg / prompts[0].weight_sum, 6)  # the writer's CFG x the AND weights' sum
    encoder = _encoder(reader, reader.upstream(sampler_id, "positive"))
    if encoder is not None:
        clip_skip = _clip_skip(reader, reader.upstream(encoder, "clip"))
    width, height = _size(reader, reader.upstream(sampler_id, "latent_image"))
    return ForeignMetadata(
        tool="ComfyUI",
        source=source,
        prompt=prompts[0].text or "",
        negative_prompt=prompts[1].text or "",
        model=model,
        width=width,
        height=height,
        steps=steps,
        cfg_scale=cfg,
        sampler=sampler,
        schedule=schedule,
        seed=seed,
        clip_skip=clip_skip,
        loras=tuple(loras),
        unmapped=_capped(reader.unmapped),
    )


def _whole_run(reader: _Reader, sampler_id: str, steps: int | None, denoise: float) -> bool:
    """Whether a denoise below 1 on an empty latent is our graphs' way of running DDIM's ``steps``
    (:func:`~..comfyui_steps.ksampler_run`): a txt2img of those steps, not an img2img."""
    latent = reader.upstream(sampler_id, "latent_image")
    sampler = as_text(reader.value(sampler_id, "sampler_name"))
    scheduler = as_text(reader.value(sampler_id, "scheduler"))
    if latent is None or reader.graph[latent]["class_type"] not in _EMPTY_LATENTS or steps is None:
        return False
    if sampler is None or scheduler != "ddim_uniform" or not 1 <= steps <= _MAX_STEPS:
        return False
    try:
        return ksampler_run(sampler, scheduler, steps, steps) == KSamplerRun(steps, denoise)
    except ValueError:  # no such run: the denoise is the graph's own
        return False


def _capped(items: list[Unmapped], limit: int = 25) -> tuple[Unmapped, ...]:
    """At most ``limit`` entries; the rest counted in the last one (a hostile graph can note thousands)."""
    if len(items) <= limit:
        return tuple(items)
    return (
        *items[: limit - 1],
        Unmapped("more", str(len(items) - limit + 1), "further nodes not reproduced"),
    )


def _a1111_literal(text: str) -> str:
    """ComfyUI reads ``[`` and ``]`` as plain characters; A1111 syntax needs them escaped."""
    return text.replace("[", "\\[").replace("]", "\\]")


def _stem(name: Any) -> str | None:
    return PurePath(name.replace("\\", "/")).stem if isinstance(name, str) and name else None


def _model(reader: _Reader, node_id: str | None) -> tuple[str | None, list[ForeignLora]]:
    loras: list[ForeignLora] = []
    seen: set[str] = set()
    while node_id is not None and node_id not in seen and len(seen) < _MAX_WALK:
        seen.add(node_id)
        kind = reader.graph[node_id]["class_type"]
        if kind in _CHECKPOINTS:
            return _stem(reader.value(node_id, "ckpt_name")), loras[::-1]
        if kind in ("LoraLoader", "LoraLoaderModelOnly"):
            name = _stem(reader.value(node_id, "lora_name"))
            unet = as_float(reader.value(node_id, "strength_model"))
            te = as_float(reader.value(node_id, "strength_clip")) if kind == "LoraLoader" else 0.0
            if name is not None and unet is not None and te is not None:
                loras.append(ForeignLora(name, unet, te))
            else:
                reader.note(node_id, "a LoRA loader whose name or strengths cannot be read")
        else:
            reader.note(node_id, "this node changes the model; it is not reproduced")
        node_id = reader.upstream(node_id, "model")
    if len(seen) >= _MAX_WALK:
        reader.unmapped.append(
            Unmapped("model", "", f"the model chain is longer than {_MAX_WALK} nodes; not followed")
        )
    return None, loras[::-1]


def _encoder(reader: _Reader, node_id: str | None) -> str | None:
    """The text encoder node behind a conditioning input, noting what lies between."""
    seen: set[str] = set()
    while node_id is not None and node_id not in seen and len(seen) < _MAX_WALK:
        seen.add(node_id)
        kind = reader.graph[node_id]["class_type"]
        if kind in _TEXT_ENCODERS:
            return node_id
        reason = (
            "a ControlNet needs its control image, which the file does not carry"
            if "ControlNet" in kind
            else "this conditioning node is not reproduced"
        )
        if kind not in MAPPED:  # read into the prompt, or the prompt's own entry says why not
            reader.note(node_id, reason)
        inputs = reader.graph[node_id]["inputs"]
        name = next(
            (k for k in ("conditioning", "positive", "conditioning_to", "conditioning_1") if k in inputs),
            None,
        )
        node_id = reader.upstream(node_id, name) if name else None
    return None


def _text(reader: _Reader, node_id: str | None) -> str | None:
    encoder = _encoder(reader, node_id)
    if encoder is None:
        return None
    if reader.graph[encoder]["class_type"] == "CLIPTextEncodeSDXL":
        text_g, text_l = as_text(reader.value(encoder, "text_g")), as_text(reader.value(encoder, "text_l"))
        if text_l and text_l != text_g:
            reader.note(
                encoder, "a separate text for SDXL's second encoder is not supported; text_g is used", text_l
            )
        return text_g
    text = as_text(reader.value(encoder, "text"))
    if text is None:
        reader.note(encoder, "the prompt text comes from a node that is not read")
    return text


def _clip_skip(reader: _Reader, node_id: str | None) -> int | None:
    seen: set[str] = set()
    while node_id is not None and node_id not in seen and len(seen) < _MAX_WALK:
        seen.add(node_id)
        if reader.graph[node_id]["class_type"] == "CLIPSetLastLayer":
            layer = as_int(reader.value(node_id, "stop_at_clip_layer"))
            return -layer if layer is not None and layer < 0 else None
        node_id = reader.upstream(node_id, "clip")
    return None


def _size(reader: _Reader, node_id: str | None) -> tuple[int | None, int | None]:
    if node_id is None:
        return None, None
    kind = reader.graph[node_id]["class_type"]
    if kind in _EMPTY_LATENTS:
        batch = as_int(reader.value(node_id, "batch_size"))
        if batch is not None and batch > 1:
            reader.note(
                node_id,
                "the first image of the batch is regenerated (ComfyUI's batch noise differs)",
                str(batch),
            )
        return as_int(reader.value(node_id, "width")), as_int(reader.value(node_id, "height"))
    if kind in ("VAEEncode", "VAEEncodeForInpaint", "SetLatentNoiseMask", "InpaintModelConditioning"):
        reader.note(node_id, "img2img / inpainting needs the source image, which the file does not carry")
    else:
        reader.note(node_id, "the starting latent comes from a node that is not reproduced")
    return None, None
