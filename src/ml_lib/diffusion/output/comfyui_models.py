"""A checkpoint and what the plan loads into it as ComfyUI core nodes: ``CheckpointLoaderSimple`` → one
``LoraLoader`` per LoRA → ``CLIPSetLastLayer`` for clip skip. The first pass's model is made this way, and
so is a hires checkpoint's (A1111 activates the networks again after loading it, so its LoRAs are the
plan's too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from ..plan import GenerationPlan, ModelRef

__all__ = ["file_name", "model_nodes"]

Link = list[Any]


def file_name(path: str, fallback: str = "") -> str:
    """The file name ComfyUI's loaders list (names are relative to their model folder)."""
    name = PurePath(path.replace("\\", "/")).name
    return name or fallback


def model_nodes(
    add: Callable[..., str], plan: GenerationPlan, model: ModelRef, title: str = "Load Checkpoint"
) -> tuple[Link, Link, Link]:
    """(model, clip, vae) links of ``model`` loaded with ``plan``'s LoRAs and clip skip."""
    ckpt = add("CheckpointLoaderSimple", title, ckpt_name=file_name(model.reference, model.name))
    unet: Link = [ckpt, 0]
    clip: Link = [ckpt, 1]
    for lora in plan.loras:
        node = add(
            "LoraLoader",
            f"LoRA {lora.name}",
            model=unet,
            clip=clip,
            lora_name=file_name(lora.path, lora.name),
            strength_model=lora.unet_weight,
            strength_clip=lora.te_weight,
        )
        unet, clip = [node, 0], [node, 1]
    if plan.clip_skip > 1:
        clip = [add("CLIPSetLastLayer", "Clip skip", clip=clip, stop_at_clip_layer=-plan.clip_skip), 0]
    return unet, clip, [ckpt, 2]
