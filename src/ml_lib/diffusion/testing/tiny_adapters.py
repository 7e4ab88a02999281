"""Tiny, seeded LoRA, ControlNet and IP-Adapter files for the tiny pipelines.

LoRAs come in the formats users' LoRAs come in:

- ``"kohya"``: kohya-ss names in diffusers module order (``lora_unet_down_blocks_1_attentions_0_…``,
  ``lora_te_text_model_…``; ``lora_te1_``/``lora_te2_`` for SDXL) with ``lora_down``/``lora_up``/``alpha``;
- ``"kohya_blocks"``: SD1.x kohya files named after the original LDM blocks (``lora_unet_input_blocks_4_1_…``);
- ``"peft"``: the diffusers/peft format (``unet.<module>.lora_A.weight``, ``text_encoder.<module>.lora_B.weight``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file

from .ldm_layout import unet_ldm_module_names

__all__ = [
    "LoraStyle",
    "tiny_lora_state",
    "write_tiny_controlnet",
    "write_tiny_ip_adapter",
    "write_tiny_lora",
]

LoraStyle = Literal["kohya", "kohya_blocks", "peft"]

_UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
_TE_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def _targets(model: Any, suffixes: tuple[str, ...]) -> list[tuple[str, torch.nn.Linear]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.endswith(suffixes)
    ]


def _pair(
    module: torch.nn.Linear, rank: int, strength: float, gen: torch.Generator
) -> tuple[torch.Tensor, ...]:
    down = torch.randn(rank, module.in_features, generator=gen) / math.sqrt(module.in_features)
    up = torch.randn(module.out_features, rank, generator=gen) * strength
    return down, up


def tiny_lora_state(
    pipe: Any,
    *,
    style: LoraStyle = "kohya",
    rank: int = 4,
    seed: int = 0,
    strength: float = 0.5,
    unet: bool = True,
    text_encoder: bool = True,
) -> dict[str, torch.Tensor]:
    """A random LoRA for ``pipe``'s attention projections (UNet and/or text encoders), seeded."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    if unet:
        targets = _targets(pipe.unet, _UNET_TARGETS)
        ldm = unet_ldm_module_names(pipe.unet, [n for n, _ in targets]) if style == "kohya_blocks" else {}
        for name, module in targets:
            down, up = _pair(module, rank, strength, gen)
            if style == "peft":
                out[f"unet.{name}.lora_A.weight"], out[f"unet.{name}.lora_B.weight"] = down, up
            else:
                key = "lora_unet_" + ldm.get(name, name).replace(".", "_")
                out[f"{key}.lora_down.weight"], out[f"{key}.lora_up.weight"] = down, up
                out[f"{key}.alpha"] = torch.tensor(float(rank))
    encoders = [("text_encoder", getattr(pipe, "text_encoder", None))]
    encoders.append(("text_encoder_2", getattr(pipe, "text_encoder_2", None)))
    two = all(enc is not None for _, enc in encoders)
    for index, (component, encoder) in enumerate(encoders):
        if not text_encoder or encoder is None:
            continue
        for name, module in _targets(encoder, _TE_TARGETS):
            down, up = _pair(module, rank, strength, gen)
            if style == "peft":
                out[f"{component}.{name}.lora_A.weight"], out[f"{component}.{name}.lora_B.weight"] = down, up
            else:
                prefix = f"lora_te{index + 1}_" if two else "lora_te_"
                key = prefix + "text_model_" + name.removeprefix("text_model.").replace(".", "_")
                out[f"{key}.lora_down.weight"], out[f"{key}.lora_up.weight"] = down, up
                out[f"{key}.alpha"] = torch.tensor(float(rank))
    return {k: v.contiguous() for k, v in out.items()}


def write_tiny_lora(pipe: Any, path: Path, *, metadata: dict[str, str] | None = None, **kwargs: Any) -> Path:
    """Write :func:`tiny_lora_state` to ``path`` as safetensors (``metadata`` e.g. kohya ``ss_*`` keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tiny_lora_state(pipe, **kwargs), str(path), metadata=metadata)
    return path


def write_tiny_controlnet(pipe: Any, folder: Path, *, seed: int = 0, sees_image: bool = False) -> Path:
    """A ControlNet made from ``pipe``'s UNet (diffusers folder); its zero-initialised outputs are randomised
    so that a scale above 0 visibly changes the image. With ``sees_image`` the conditioning embedding's
    (zero-initialised) output is randomised too, so the control image's content changes the result."""
    from diffusers import ControlNetModel

    torch_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        factor = pipe.vae_scale_factor
        channels = tuple(16 * 2**i for i in range(int(math.log2(factor)) + 1))
        net = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=channels)
        with torch.no_grad():
            for module in [*net.controlnet_down_blocks, net.controlnet_mid_block]:
                module.weight.normal_(0.0, 0.3)
            if sees_image:
                net.controlnet_cond_embedding.conv_out.weight.normal_(0.0, 1.0)
    finally:
        torch.random.set_rng_state(torch_state)
    net.save_pretrained(folder, safe_serialization=True)
    return folder


_VISION_HIDDEN = 32


def _plus_image_proj(cross: int, seed: int) -> dict[str, torch.Tensor]:
    """An IP-Adapter Plus Resampler (``image_proj``) in the original h94 key layout, seeded."""
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    torch_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        proj = IPAdapterPlusImageProjection(
            embed_dims=_VISION_HIDDEN, output_dims=cross, hidden_dims=64, heads=1, num_queries=4
        )
    finally:
        torch.random.set_rng_state(torch_state)
    out: dict[str, torch.Tensor] = {}
    for key, value in proj.state_dict().items():
        parts = key.split(".")
        if parts[0] != "layers":
            out[key] = value
            continue
        i, rest = parts[1], ".".join(parts[2:])
        renames = {
            "ln0.": "0.norm1.", "ln1.": "0.norm2.", "attn.to_q.": "0.to_q.", "attn.to_out.0.": "0.to_out.",
            "ff.0.": "1.0.", "ff.1.net.0.proj.": "1.1.", "ff.1.net.2.": "1.3.",
        }  # fmt: skip
        if rest.startswith(("attn.to_k.", "attn.to_v.")):
            if rest.startswith("attn.to_k."):
                v = proj.state_dict()[key.replace("to_k", "to_v")]
                out[f"layers.{i}.0.to_kv.weight"] = torch.cat([value, v])
            continue
        for old, new in renames.items():
            if rest.startswith(old):
                out[f"layers.{i}.{new}{rest[len(old) :]}"] = value
                break
        else:
            raise KeyError(key)
    return out


def write_tiny_ip_adapter(
    pipe: Any, folder: Path, *, seed: int = 0, embed_dim: int = 16, plus: bool = False
) -> Path:
    """A basic (or ``plus``) IP-Adapter for ``pipe`` in the h94 layout: ``folder/models/image_encoder/`` (a tiny
    CLIP vision model) and ``folder/models/ip-adapter_tiny.safetensors`` (``image_proj.*``, ``ip_adapter.N.*``)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    gen = torch.Generator().manual_seed(seed)
    unet = pipe.unet
    cross = unet.config.cross_attention_dim
    if plus:
        state = {f"image_proj.{k}": v for k, v in _plus_image_proj(cross, seed).items()}
    else:
        state = {
            "image_proj.proj.weight": torch.randn(cross * 4, embed_dim, generator=gen) * 0.5,
            "image_proj.proj.bias": torch.zeros(cross * 4),
            "image_proj.norm.weight": torch.ones(cross),
            "image_proj.norm.bias": torch.zeros(cross),
        }
    key_id = 1
    channels = unet.config.block_out_channels
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        for part in ("to_k_ip", "to_v_ip"):
            state[f"ip_adapter.{key_id}.{part}.weight"] = torch.randn(hidden, cross, generator=gen) * 0.5
        key_id += 2
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(models / "ip-adapter_tiny.safetensors"))
    config = CLIPVisionConfig(
        hidden_size=_VISION_HIDDEN, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        image_size=32, patch_size=8, projection_dim=embed_dim,
    )  # fmt: skip
    torch_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        encoder = CLIPVisionModelWithProjection(config)
    finally:
        torch.random.set_rng_state(torch_state)
    encoder.save_pretrained(models / "image_encoder", safe_serialization=True)
    return folder
