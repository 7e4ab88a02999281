"""Header-realistic fake adapters (LoRA/LyCORIS with kohya metadata, ControlNet, control-LoRA, IP-Adapter,
textual-inversion embeddings) for tests and benchmarks; see :mod:`.fakes`."""

from __future__ import annotations

import json

from .fakes import _CTX, Keys, _unet_plan, unet_keys

__all__ = ["controlnet_keys", "embedding_keys", "ip_adapter_keys", "kohya_metadata", "lora_keys"]


def _lora_modules(family: str, style: str) -> list[tuple[str, int, int]]:
    """(module name, in features, out features) of the attention layers a LoRA trains."""
    chans, depths, _ = _unet_plan(family)
    ctx = _CTX[family]
    places: list[tuple[str, int, int]] = []  # (diffusers path, channels, depth)
    for level, (c, depth) in enumerate(zip(chans, depths, strict=True)):
        if depth:
            places += [(f"down_blocks.{level}.attentions.{a}", c, depth) for a in range(2)]
    places.append(("mid_block.attentions.0", chans[-1], max(depths[-1], depths[-2]) or 1))
    for up, level in enumerate(reversed(range(len(chans)))):
        if depths[level]:
            places += [(f"up_blocks.{up}.attentions.{a}", chans[level], depths[level]) for a in range(3)]
    out = []
    for path, c, depth in places:
        for d in range(depth):
            b = f"{path}.transformer_blocks.{d}."
            for attn, kv in (("attn1", c), ("attn2", ctx)):
                for proj, fin in (("to_q", c), ("to_k", kv), ("to_v", kv), ("to_out.0", c)):
                    out.append((b + f"{attn}.{proj}", fin, c))
            out += [(b + "ff.net.0.proj", c, 8 * c), (b + "ff.net.2", 4 * c, c)]
        out += [(f"{path}.proj_in", c, c), (f"{path}.proj_out", c, c)]
    if style == "kohya-ldm":  # sd-scripts names SDXL modules after the LDM blocks
        out = [(_ldm_name(name), fin, fout) for name, fin, fout in out]
    return out


def _ldm_name(diffusers: str) -> str:
    parts = diffusers.split(".")
    if parts[0] == "mid_block":
        return "middle_block.1." + ".".join(parts[3:])
    level, a = int(parts[1]), int(parts[3])
    if parts[0] == "down_blocks":
        return f"input_blocks.{3 * level + a + 1}.1." + ".".join(parts[4:])
    return f"output_blocks.{3 * level + a}.1." + ".".join(parts[4:])


def lora_keys(
    family: str = "sd1",
    rank: int = 8,
    *,
    style: str = "kohya",
    network: str = "lora",
    text_encoder: bool = True,
    dtype: str = "F16",
) -> Keys:
    """A LoRA/LyCORIS for ``family``: style kohya | diffusers | peft; network lora | loha | lokr | dora."""
    kohya = style == "kohya"
    modules = _lora_modules(family, "kohya-ldm" if kohya and family == "sdxl" else "diffusers")
    named = [
        (("lora_unet_" + m.replace(".", "_")) if kohya else f"unet.{m}", fin, fout)
        for m, fin, fout in modules
    ]
    if text_encoder:
        tes = [("te1" if family == "sdxl" else "te", 768 if family != "sd2" else 1024, 12)]
        if family == "sdxl":
            tes.append(("te2", 1280, 32))
        for tag, width, layers in tes:
            for i in range(layers):
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    base = f"text_model.encoder.layers.{i}.self_attn.{proj}"
                    if kohya:
                        named.append((f"lora_{tag}_" + base.replace(".", "_"), width, width))
                    else:
                        prefix = "text_encoder_2." if tag == "te2" else "text_encoder."
                        named.append((prefix + base, width, width))
    keys: Keys = {}
    for name, fin, fout in named:
        if network == "loha":
            keys[f"{name}.hada_w1_a"] = (dtype, (fout, rank))
            keys[f"{name}.hada_w1_b"] = (dtype, (rank, fin))
            keys[f"{name}.hada_w2_a"] = (dtype, (fout, rank))
            keys[f"{name}.hada_w2_b"] = (dtype, (rank, fin))
        elif network == "lokr":
            keys[f"{name}.lokr_w1"] = (dtype, (8, 8))
            keys[f"{name}.lokr_w2_a"] = (dtype, (fout // 8, rank))
            keys[f"{name}.lokr_w2_b"] = (dtype, (rank, fin // 8))
        elif style == "peft":
            keys[f"{name}.lora_A.weight"] = (dtype, (rank, fin))
            keys[f"{name}.lora_B.weight"] = (dtype, (fout, rank))
        else:
            keys[f"{name}.lora_down.weight"] = (dtype, (rank, fin))
            keys[f"{name}.lora_up.weight"] = (dtype, (fout, rank))
        if network == "dora":
            keys[f"{name}.dora_scale"] = (dtype, (1, fin))
        if kohya:
            keys[f"{name}.alpha"] = (dtype, ())
    return keys


def kohya_metadata(
    base: str = "sd_v1",
    *,
    rank: int = 8,
    alpha: float = 4.0,
    tags: dict[str, dict[str, int]] | None = None,
    output_name: str = "my_lora",
    module: str = "networks.lora",
    resolution: str = "(512, 512)",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The ``ss_*`` metadata sd-scripts writes into a LoRA."""
    meta = {
        "ss_base_model_version": base,
        "ss_network_module": module,
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_output_name": output_name,
        "ss_resolution": resolution,
        "ss_sd_model_name": "model.safetensors",
        "ss_tag_frequency": json.dumps(tags or {}),
        "ss_num_train_images": "120",
    }
    meta.update(extra or {})
    return meta


def controlnet_keys(family: str = "sd1", *, control_lora: bool = False) -> Keys:
    """A ControlNet in the A1111/LDM layout (``control_model.``), or a Stability control-LoRA."""
    if control_lora:
        keys: Keys = {"lora_controlnet": ("F16", (0,)), "input_hint_block.0.weight": ("F16", (16, 3, 3, 3))}
        for name, fin, fout in _lora_modules(family, "kohya-ldm")[:40]:
            keys[f"{name}.down"] = ("F16", (128, fin))
            keys[f"{name}.up"] = ("F16", (fout, 128))
        return keys
    unet = unet_keys(family, prefix="control_model.")
    keys = {k: v for k, v in unet.items() if ".output_blocks." not in k and ".out." not in k}
    keys["control_model.input_hint_block.0.weight"] = ("F16", (16, 3, 3, 3))
    for i in range(12):
        keys[f"control_model.zero_convs.{i}.0.weight"] = ("F16", (320, 320, 1, 1))
    keys["control_model.middle_block_out.0.weight"] = ("F16", (1280, 1280, 1, 1))
    return keys


def ip_adapter_keys(family: str = "sd1", *, plus: bool = False) -> Keys:
    """An IP-Adapter: ``image_proj`` + per-attention ``ip_adapter.N.to_{k,v}_ip``."""
    ctx = _CTX[family]
    keys: Keys = {}
    if plus:
        keys["image_proj.latents"] = ("F16", (1, 16, ctx))
        keys["image_proj.proj_in.weight"] = ("F16", (ctx, 1280))
    else:
        keys["image_proj.proj.weight"] = ("F16", (4 * ctx, 1024))
        keys["image_proj.norm.weight"] = ("F16", (ctx,))
    for i in range(1, 32 if family == "sd1" else 140, 2):
        keys[f"ip_adapter.{i}.to_k_ip.weight"] = ("F16", (320, ctx))
        keys[f"ip_adapter.{i}.to_v_ip.weight"] = ("F16", (320, ctx))
    return keys


def embedding_keys(family: str = "sd1", vectors: int = 4) -> Keys:
    """A textual-inversion embedding: ``emb_params`` (SD1/SD2) or ``clip_l`` + ``clip_g`` (SDXL)."""
    if family == "sdxl":
        return {"clip_l": ("F32", (vectors, 768)), "clip_g": ("F32", (vectors, 1280))}
    return {"emb_params": ("F32", (vectors, 1024 if family == "sd2" else 768))}
