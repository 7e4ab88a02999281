"""ComfyUI's two graph formats: the API ``prompt`` (inputs by name, links ``[node, output]``) and the UI
``workflow`` (LiteGraph nodes, positional ``widgets_values``, a separate link list).

:data:`NODE_IO` lists, for the core nodes we write and read, the inputs in ComfyUI's ``INPUT_TYPES``
order (link types in capitals, widgets as ``INT``/``FLOAT``/``STRING``/``COMBO``) and the output types;
the tests check it against ``tests/fixtures/comfyui_nodes.json`` (transcribed from ComfyUI's source).
The UI stores widget values in input order, plus one value the frontend adds after a ``seed``
(``control_after_generate``) and after ``LoadImage``'s ``image`` (the upload button).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["NODE_IO", "WIDGET_TYPES", "api_to_workflow", "widget_names", "workflow_to_api"]

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "COMBO"})
_SEED_CONTROLS = frozenset({"fixed", "randomize", "increment", "decrement"})
_UPLOAD_NODES = frozenset({"LoadImage", "LoadImageMask"})

#: Node type → (inputs as (name, type) in INPUT_TYPES order, output types).
NODE_IO: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "CheckpointLoaderSimple": ((("ckpt_name", "COMBO"),), ("MODEL", "CLIP", "VAE")),
    "LoraLoader": (
        (
            ("model", "MODEL"),
            ("clip", "CLIP"),
            ("lora_name", "COMBO"),
            ("strength_model", "FLOAT"),
            ("strength_clip", "FLOAT"),
        ),
        ("MODEL", "CLIP"),
    ),
    "CLIPSetLastLayer": ((("clip", "CLIP"), ("stop_at_clip_layer", "INT")), ("CLIP",)),
    "CLIPTextEncode": ((("text", "STRING"), ("clip", "CLIP")), ("CONDITIONING",)),
    "EmptyLatentImage": ((("width", "INT"), ("height", "INT"), ("batch_size", "INT")), ("LATENT",)),
    "LoadImage": ((("image", "COMBO"),), ("IMAGE", "MASK")),
    "LoadImageMask": ((("image", "COMBO"), ("channel", "COMBO")), ("MASK",)),
    "ImageScale": (
        (
            ("image", "IMAGE"),
            ("upscale_method", "COMBO"),
            ("width", "INT"),
            ("height", "INT"),
            ("crop", "COMBO"),
        ),
        ("IMAGE",),
    ),
    "LatentUpscale": (
        (
            ("samples", "LATENT"),
            ("upscale_method", "COMBO"),
            ("width", "INT"),
            ("height", "INT"),
            ("crop", "COMBO"),
        ),
        ("LATENT",),
    ),
    "VAEEncode": ((("pixels", "IMAGE"), ("vae", "VAE")), ("LATENT",)),
    "SetLatentNoiseMask": ((("samples", "LATENT"), ("mask", "MASK")), ("LATENT",)),
    "ControlNetLoader": ((("control_net_name", "COMBO"),), ("CONTROL_NET",)),
    "ControlNetApplyAdvanced": (
        (
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("control_net", "CONTROL_NET"),
            ("image", "IMAGE"),
            ("strength", "FLOAT"),
            ("start_percent", "FLOAT"),
            ("end_percent", "FLOAT"),
        ),
        ("CONDITIONING", "CONDITIONING"),
    ),
    "KSampler": (
        (
            ("model", "MODEL"),
            ("seed", "INT"),
            ("steps", "INT"),
            ("cfg", "FLOAT"),
            ("sampler_name", "COMBO"),
            ("scheduler", "COMBO"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
            ("denoise", "FLOAT"),
        ),
        ("LATENT",),
    ),
    "KSamplerAdvanced": (
        (
            ("model", "MODEL"),
            ("add_noise", "COMBO"),
            ("noise_seed", "INT"),
            ("steps", "INT"),
            ("cfg", "FLOAT"),
            ("sampler_name", "COMBO"),
            ("scheduler", "COMBO"),
            ("positive", "CONDITIONING"),
            ("negative", "CONDITIONING"),
            ("latent_image", "LATENT"),
            ("start_at_step", "INT"),
            ("end_at_step", "INT"),
            ("return_with_leftover_noise", "COMBO"),
        ),
        ("LATENT",),
    ),
    "ConditioningCombine": (
        (("conditioning_1", "CONDITIONING"), ("conditioning_2", "CONDITIONING")),
        ("CONDITIONING",),
    ),
    "ConditioningConcat": (
        (("conditioning_to", "CONDITIONING"), ("conditioning_from", "CONDITIONING")),
        ("CONDITIONING",),
    ),
    "ConditioningSetAreaStrength": (
        (("conditioning", "CONDITIONING"), ("strength", "FLOAT")),
        ("CONDITIONING",),
    ),
    "ConditioningSetTimestepRange": (
        (("conditioning", "CONDITIONING"), ("start", "FLOAT"), ("end", "FLOAT")),
        ("CONDITIONING",),
    ),
    "ConditioningZeroOut": ((("conditioning", "CONDITIONING"),), ("CONDITIONING",)),
    "VAEDecode": ((("samples", "LATENT"), ("vae", "VAE")), ("IMAGE",)),
    "SaveImage": ((("images", "IMAGE"), ("filename_prefix", "STRING")), ()),
}


def widget_names(class_type: str) -> tuple[str, ...]:
    """The widget inputs of a core node in the order the UI stores their values (without frontend extras)."""
    inputs, _ = NODE_IO.get(class_type, ((), ()))
    return tuple(name for name, kind in inputs if kind in WIDGET_TYPES)


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _note(node_id: int, order: int, text: str, row: int) -> dict[str, Any]:
    """A ``Note`` of ComfyUI's frontend (``web/extensions/core/noteNode.js``: a virtual node, never sent
    to the server, whose one widget is its text)."""
    return {
        "id": node_id,
        "type": "Note",
        "pos": [50, -180 - 200 * row],
        "size": [420, 160],
        "flags": {},
        "order": order,
        "mode": 0,
        "inputs": [],
        "outputs": [],
        "properties": {"text": ""},
        "widgets_values": [text],
        "title": "Note",
    }


def api_to_workflow(nodes: Mapping[str, Mapping[str, Any]], notes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The UI workflow of an API graph made of :data:`NODE_IO` nodes (laid out left to right by depth),
    with a ``Note`` above it for each of ``notes``."""
    depth: dict[str, int] = {}
    rows: dict[int, int] = {}
    links: list[list[Any]] = []
    out_links: dict[tuple[str, int], list[int]] = {}
    ui_nodes: list[dict[str, Any]] = []
    for order, (node_id, node) in enumerate(nodes.items()):
        class_type = node["class_type"]
        inputs_spec, outputs = NODE_IO[class_type]
        sources = [v[0] for v in node["inputs"].values() if _is_link(v)]
        depth[node_id] = 1 + max((depth[s] for s in sources), default=-1)
        row = rows.get(depth[node_id], 0)
        rows[depth[node_id]] = row + 1
        ui_inputs: list[dict[str, Any]] = []
        widgets: list[Any] = []
        for name, kind in inputs_spec:
            value = node["inputs"][name]
            if kind in WIDGET_TYPES:
                widgets.append(value)
                if name in ("seed", "noise_seed"):
                    widgets.append("fixed")
                elif class_type in _UPLOAD_NODES and name == "image":
                    widgets.append("image")
                continue
            link_id = len(links) + 1
            links.append([link_id, int(value[0]), value[1], int(node_id), len(ui_inputs), kind])
            out_links.setdefault((value[0], value[1]), []).append(link_id)
            ui_inputs.append({"name": name, "type": kind, "link": link_id})
        ui_nodes.append(
            {
                "id": int(node_id),
                "type": class_type,
                "pos": [50 + 360 * depth[node_id], 50 + 220 * row],
                "size": [315, 130],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": ui_inputs,
                "outputs": [{"name": kind, "type": kind, "slot_index": i} for i, kind in enumerate(outputs)],
                "properties": {"Node name for S&R": class_type},
                "widgets_values": widgets,
                "title": node.get("_meta", {}).get("title", class_type),
            }
        )
    for ui in ui_nodes:
        for output in ui["outputs"]:
            output["links"] = out_links.get((str(ui["id"]), output["slot_index"]), [])
    last = max((n["id"] for n in ui_nodes), default=0)
    ui_nodes += [_note(last + 1 + i, len(ui_nodes) + i, text, i) for i, text in enumerate(notes)]
    return {
        "last_node_id": max((n["id"] for n in ui_nodes), default=0),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def _link_table(links: Any) -> dict[int, tuple[str, int]]:
    """Link id → (source node id, output index); both the list and the object link forms."""
    table: dict[int, tuple[str, int]] = {}
    if not isinstance(links, list):
        return table
    for link in links:
        if isinstance(link, list) and len(link) >= 3 and all(isinstance(x, int) for x in link[:3]):
            table[link[0]] = (str(link[1]), link[2])
        elif isinstance(link, Mapping):
            link_id, origin, slot = link.get("id"), link.get("origin_id"), link.get("origin_slot")
            if isinstance(link_id, int) and isinstance(origin, int) and isinstance(slot, int):
                table[link_id] = (str(origin), slot)
    return table


def workflow_to_api(workflow: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """An API-like graph from a UI workflow: links resolved, core nodes' widgets named.

    Nodes of other types keep their links, and their unnamed widget values under ``widgets_values``.
    Muted or bypassed nodes (mode 2 / 4) are left out. Raises ValueError when ``nodes`` is not a list.
    """
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        raise ValueError("the workflow has no node list")
    links = _link_table(workflow.get("links"))
    graph: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if (
            not isinstance(node, Mapping)
            or not isinstance(node.get("type"), str)
            or node.get("mode") in (2, 4)
        ):
            continue
        inputs: dict[str, Any] = {}
        for entry in node.get("inputs") or ():
            if (
                isinstance(entry, Mapping)
                and isinstance(entry.get("name"), str)
                and entry.get("link") in links
            ):
                source = links[entry["link"]]
                inputs[entry["name"]] = [source[0], source[1]]
        values = node.get("widgets_values")
        values = list(values) if isinstance(values, list) else []
        names = widget_names(node["type"])
        if names:
            _name_widgets(node["type"], names, values, inputs)
        elif values:
            inputs["widgets_values"] = values
        graph[str(node.get("id"))] = {"class_type": node["type"], "inputs": inputs}
    return graph


def _name_widgets(class_type: str, names: tuple[str, ...], values: list[Any], inputs: dict[str, Any]) -> None:
    position = 0
    for name in names:
        if position >= len(values):
            break
        inputs.setdefault(name, values[position])
        position += 1
        extra = values[position] if position < len(values) else None
        seed_control = name in ("seed", "noise_seed") and isinstance(extra, str) and extra in _SEED_CONTROLS
        if seed_control or (class_type in _UPLOAD_NODES and name == "image" and extra in ("image", None)):
            position += 1
