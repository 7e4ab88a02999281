"""Header-realistic fake safetensors files for tests and benchmarks (pure Python, sparse, no real data).

Each builder returns ``{tensor name: (dtype, shape)}`` with the key names and shapes the real files
have (LDM/A1111 checkpoints, UNets, SD3/Flux transformers, VAEs, CLIP text and vision encoders, T5);
adapters (LoRAs, ControlNets, IP-Adapters, embeddings) are in :mod:`.fakes_adapters`.
:func:`write_fake_safetensors` writes them as sparse files: the header is real, the data is a hole.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

__all__ = [
    "Keys",
    "checkpoint_keys",
    "clip_text_keys",
    "clip_vision_keys",
    "flux_transformer_keys",
    "sd3_transformer_keys",
    "t5_keys",
    "unet_keys",
    "vae_keys",
    "write_fake_safetensors",
]

Keys = dict[str, tuple[str, tuple[int, ...]]]
_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "I64": 8, "U8": 1, "F8_E4M3": 1}
_CTX = {"sd1": 768, "sd2": 1024, "sdxl": 2048, "sdxl-refiner": 1280}


def write_fake_safetensors(path: Path, tensors: Keys, metadata: dict[str, str] | None = None) -> Path:
    """A valid safetensors file with these tensor names, dtypes and shapes; the data is a sparse hole."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = _SIZES[dtype] * math.prod(shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)
    return path


def _res(p: str, cin: int, cout: int, emb: int = 1280) -> Keys:
    keys: Keys = {
        f"{p}in_layers.0.weight": ("F16", (cin,)),
        f"{p}in_layers.0.bias": ("F16", (cin,)),
        f"{p}in_layers.2.weight": ("F16", (cout, cin, 3, 3)),
        f"{p}in_layers.2.bias": ("F16", (cout,)),
        f"{p}emb_layers.1.weight": ("F16", (cout, emb)),
        f"{p}emb_layers.1.bias": ("F16", (cout,)),
        f"{p}out_layers.0.weight": ("F16", (cout,)),
        f"{p}out_layers.0.bias": ("F16", (cout,)),
        f"{p}out_layers.3.weight": ("F16", (cout, cout, 3, 3)),
        f"{p}out_layers.3.bias": ("F16", (cout,)),
    }
    if cin != cout:
        keys[f"{p}skip_connection.weight"] = ("F16", (cout, cin, 1, 1))
        keys[f"{p}skip_connection.bias"] = ("F16", (cout,))
    return keys


def _st(p: str, c: int, ctx: int, depth: int, linear: bool) -> Keys:
    proj = (c, c) if linear else (c, c, 1, 1)
    keys: Keys = {f"{p}norm.weight": ("F16", (c,)), f"{p}norm.bias": ("F16", (c,))}
    keys[f"{p}proj_in.weight"], keys[f"{p}proj_in.bias"] = ("F16", proj), ("F16", (c,))
    for d in range(depth):
        b = f"{p}transformer_blocks.{d}."
        for attn, kv in (("attn1", c), ("attn2", ctx)):
            keys[f"{b}{attn}.to_q.weight"] = ("F16", (c, c))
            keys[f"{b}{attn}.to_k.weight"] = ("F16", (c, kv))
            keys[f"{b}{attn}.to_v.weight"] = ("F16", (c, kv))
            keys[f"{b}{attn}.to_out.0.weight"] = ("F16", (c, c))
            keys[f"{b}{attn}.to_out.0.bias"] = ("F16", (c,))
        keys[f"{b}ff.net.0.proj.weight"] = ("F16", (8 * c, c))
        keys[f"{b}ff.net.0.proj.bias"] = ("F16", (8 * c,))
        keys[f"{b}ff.net.2.weight"] = ("F16", (c, 4 * c))
        keys[f"{b}ff.net.2.bias"] = ("F16", (c,))
        for n in (1, 2, 3):
            keys[f"{b}norm{n}.weight"] = ("F16", (c,))
            keys[f"{b}norm{n}.bias"] = ("F16", (c,))
    keys[f"{p}proj_out.weight"], keys[f"{p}proj_out.bias"] = ("F16", proj), ("F16", (c,))
    return keys


def _unet_plan(family: str) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    if family == "sdxl":
        return (320, 640, 1280), (0, 2, 10), 2816
    if family == "sdxl-refiner":
        return (384, 768, 1536, 1536), (0, 4, 4, 0), 2560
    return (320, 640, 1280, 1280), (1, 1, 1, 0), 0


def unet_keys(family: str = "sd1", prefix: str = "model.diffusion_model.") -> Keys:
    """An LDM (A1111/original) UNet of ``family`` (sd1, sd2, sdxl, sdxl-refiner)."""
    chans, depths, adm = _unet_plan(family)
    ctx, linear = _CTX[family], family != "sd1"
    temb = chans[0] * 4
    keys: Keys = {
        f"{prefix}time_embed.0.weight": ("F16", (temb, chans[0])),
        f"{prefix}time_embed.2.weight": ("F16", (temb, temb)),
        f"{prefix}input_blocks.0.0.weight": ("F16", (chans[0], 4, 3, 3)),
        f"{prefix}input_blocks.0.0.bias": ("F16", (chans[0],)),
    }
    if adm:
        keys[f"{prefix}label_emb.0.0.weight"] = ("F16", (temb, adm))
        keys[f"{prefix}label_emb.0.2.weight"] = ("F16", (temb, temb))
    block, cin = 1, chans[0]
    for level, (c, depth) in enumerate(zip(chans, depths, strict=True)):
        for _ in range(2):
            keys.update(_res(f"{prefix}input_blocks.{block}.0.", cin, c, temb))
            if depth:
                keys.update(_st(f"{prefix}input_blocks.{block}.1.", c, ctx, depth, linear))
            block, cin = block + 1, c
        if level < len(chans) - 1:
            keys[f"{prefix}input_blocks.{block}.0.op.weight"] = ("F16", (c, c, 3, 3))
            block += 1
    mid = chans[-1]
    keys.update(_res(f"{prefix}middle_block.0.", mid, mid, temb))
    keys.update(_st(f"{prefix}middle_block.1.", mid, ctx, max(depths[-1], depths[-2]) or 1, linear))
    keys.update(_res(f"{prefix}middle_block.2.", mid, mid, temb))
    out = 0
    for level in reversed(range(len(chans))):
        c, depth = chans[level], depths[level]
        for i in range(3):
            keys.update(_res(f"{prefix}output_blocks.{out}.0.", c * 2 if i < 2 else c + c // 2, c, temb))
            if depth:
                keys.update(_st(f"{prefix}output_blocks.{out}.1.", c, ctx, depth, linear))
            out += 1
    keys[f"{prefix}out.0.weight"] = ("F16", (chans[0],))
    keys[f"{prefix}out.2.weight"] = ("F16", (4, chans[0], 3, 3))
    return keys


def clip_text_keys(prefix: str, width: int = 768, layers: int = 12) -> Keys:
    """A transformers-layout CLIP text encoder (CLIP-L 768/12, bigG 1280/32) under ``prefix``."""
    keys: Keys = {
        f"{prefix}text_model.embeddings.token_embedding.weight": ("F16", (49408, width)),
        f"{prefix}text_model.embeddings.position_embedding.weight": ("F16", (77, width)),
    }
    for i in range(layers):
        p = f"{prefix}text_model.encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            keys[f"{p}self_attn.{proj}.weight"] = ("F16", (width, width))
            keys[f"{p}self_attn.{proj}.bias"] = ("F16", (width,))
        keys[f"{p}mlp.fc1.weight"] = ("F16", (width * 4, width))
        keys[f"{p}mlp.fc2.weight"] = ("F16", (width, width * 4))
        keys[f"{p}layer_norm1.weight"] = ("F16", (width,))
        keys[f"{p}layer_norm2.weight"] = ("F16", (width,))
    keys[f"{prefix}text_model.final_layer_norm.weight"] = ("F16", (width,))
    return keys


def _open_clip_keys(prefix: str, width: int, layers: int) -> Keys:
    keys: Keys = {
        f"{prefix}token_embedding.weight": ("F16", (49408, width)),
        f"{prefix}positional_embedding": ("F16", (77, width)),
        f"{prefix}text_projection": ("F16", (width, width)),
        f"{prefix}ln_final.weight": ("F16", (width,)),
    }
    for i in range(layers):
        p = f"{prefix}transformer.resblocks.{i}."
        keys[f"{p}attn.in_proj_weight"] = ("F16", (3 * width, width))
        keys[f"{p}attn.out_proj.weight"] = ("F16", (width, width))
        keys[f"{p}ln_1.weight"] = ("F16", (width,))
        keys[f"{p}ln_2.weight"] = ("F16", (width,))
        keys[f"{p}mlp.c_fc.weight"] = ("F16", (4 * width, width))
        keys[f"{p}mlp.c_proj.weight"] = ("F16", (width, 4 * width))
    return keys


def vae_keys(prefix: str = "", latent: int = 4, quant: bool = True) -> Keys:
    """An LDM-layout KL VAE (4 latent channels for SD1/2/XL, 16 for SD3/Flux)."""
    keys: Keys = {
        f"{prefix}encoder.conv_in.weight": ("F16", (128, 3, 3, 3)),
        f"{prefix}encoder.conv_out.weight": ("F16", (2 * latent, 512, 3, 3)),
        f"{prefix}decoder.conv_in.weight": ("F16", (512, latent, 3, 3)),
        f"{prefix}decoder.conv_out.weight": ("F16", (3, 128, 3, 3)),
    }
    for side in ("encoder.down", "decoder.up"):
        for level, c in enumerate((128, 256, 512, 512)):
            for r in range(2 if side == "encoder.down" else 3):
                for part in ("norm1", "conv1", "norm2", "conv2"):
                    shape = (c, c, 3, 3) if part.startswith("conv") else (c,)
                    keys[f"{prefix}{side}.{level}.block.{r}.{part}.weight"] = ("F16", shape)
    if quant:
        keys[f"{prefix}quant_conv.weight"] = ("F16", (2 * latent, 2 * latent, 1, 1))
        keys[f"{prefix}post_quant_conv.weight"] = ("F16", (latent, latent, 1, 1))
    return keys


def checkpoint_keys(family: str = "sd1") -> Keys:
    """A full A1111/LDM checkpoint: UNet + text encoder(s) + VAE."""
    keys = unet_keys(family)
    if family == "sd1":
        keys.update(clip_text_keys("cond_stage_model.transformer."))
    elif family == "sd2":
        keys.update(_open_clip_keys("cond_stage_model.model.", 1024, 24))
    elif family == "sdxl":
        keys.update(clip_text_keys("conditioner.embedders.0.transformer."))
        keys.update(_open_clip_keys("conditioner.embedders.1.model.", 1280, 32))
    else:
        keys.update(_open_clip_keys("conditioner.embedders.0.model.", 1280, 32))
    keys.update(vae_keys("first_stage_model."))
    return keys


def sd3_transformer_keys(prefix: str = "model.diffusion_model.", blocks: int = 24) -> Keys:
    """An SD3/3.5 MMDiT (SAI layout): ``joint_blocks.N.{x,context}_block``."""
    width = 64 * blocks
    keys: Keys = {
        f"{prefix}x_embedder.proj.weight": ("F16", (width, 16, 2, 2)),
        f"{prefix}pos_embed": ("F16", (1, 36864, width)),
    }
    for i in range(blocks):
        for side in ("x_block", "context_block"):
            keys[f"{prefix}joint_blocks.{i}.{side}.attn.qkv.weight"] = ("F16", (3 * width, width))
            keys[f"{prefix}joint_blocks.{i}.{side}.mlp.fc1.weight"] = ("F16", (4 * width, width))
    return keys


def flux_transformer_keys(prefix: str = "", dev: bool = True, double: int = 19, single: int = 38) -> Keys:
    """A Flux.1 transformer (BFL layout); dev has ``guidance_in``, schnell does not."""
    keys: Keys = {
        f"{prefix}img_in.weight": ("BF16", (3072, 64)),
        f"{prefix}txt_in.weight": ("BF16", (3072, 4096)),
    }
    if dev:
        keys[f"{prefix}guidance_in.in_layer.weight"] = ("BF16", (3072, 256))
    for i in range(double):
        for side in ("img", "txt"):
            keys[f"{prefix}double_blocks.{i}.{side}_attn.qkv.weight"] = ("BF16", (9216, 3072))
            keys[f"{prefix}double_blocks.{i}.{side}_mlp.0.weight"] = ("BF16", (12288, 3072))
    for i in range(single):
        keys[f"{prefix}single_blocks.{i}.linear1.weight"] = ("BF16", (21504, 3072))
    return keys


def t5_keys(prefix: str = "", layers: int = 24) -> Keys:
    """A T5-XXL encoder (transformers layout)."""
    keys: Keys = {f"{prefix}shared.weight": ("BF16", (32128, 4096))}
    for i in range(layers):
        keys[f"{prefix}encoder.block.{i}.layer.0.SelfAttention.q.weight"] = ("BF16", (4096, 4096))
        keys[f"{prefix}encoder.block.{i}.layer.1.DenseReluDense.wo.weight"] = ("BF16", (4096, 10240))
    return keys


def clip_vision_keys(width: int = 1280, layers: int = 32) -> Keys:
    """A transformers CLIPVisionModelWithProjection (ViT-H/14 1280, ViT-bigG/14 1664, ViT-L/14 1024)."""
    keys: Keys = {
        "vision_model.embeddings.patch_embedding.weight": ("F16", (width, 3, 14, 14)),
        "vision_model.embeddings.class_embedding": ("F16", (width,)),
        "visual_projection.weight": ("F16", (1024, width)),
    }
    for i in range(layers):
        keys[f"vision_model.encoder.layers.{i}.self_attn.q_proj.weight"] = ("F16", (width, width))
    return keys
