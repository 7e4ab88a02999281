"""Diffusers component state dicts → the A1111/LDM single-file key layout.

The inverse of diffusers' single-file conversion (``diffusers.loaders.single_file_utils``): the file
:func:`save_single_file` writes loads back with ``Pipeline.from_single_file(file, config=folder,
local_files_only=True)`` to tensors equal to the originals, and carries the key layout of the original
Stable Diffusion checkpoints that A1111, ComfyUI and our catalog read:

=====================  ==========================================================================
component              keys
=====================  ==========================================================================
UNet                   ``model.diffusion_model.*`` (input_blocks / middle_block / output_blocks)
VAE                    ``first_stage_model.*`` (mid-block attention q/k/v/proj_out as 1x1 convs)
SD1 text encoder       ``cond_stage_model.transformer.text_model.*`` (OpenAI CLIP layout)
SD2 text encoder       ``cond_stage_model.model.*`` (OpenCLIP layout, see below)
SDXL base encoders     ``conditioner.embedders.0.transformer.text_model.*`` and
                       ``conditioner.embedders.1.model.*`` (OpenCLIP)
SDXL refiner encoder   ``conditioner.embedders.0.model.*`` (OpenCLIP)
=====================  ==========================================================================

OpenCLIP layout: ``transformer.resblocks.N.attn.in_proj_weight/bias`` (q, k, v concatenated in that
order), ``attn.out_proj``, ``ln_1``/``ln_2``, ``mlp.c_fc``/``mlp.c_proj``, ``ln_final``,
``positional_embedding``, ``token_embedding.weight`` and ``text_projection`` stored as ``(width,
embed_dim)``, i.e. the transpose of the ``nn.Linear`` weight diffusers holds.

Which text-encoder layout a single-encoder pipeline gets (``text_layout="auto"``): a ``CLIPTextConfig``
with ``hidden_act == "gelu"`` is an OpenCLIP model (SD2's ViT-H/14), anything else (``quick_gelu``, the
activation of OpenAI CLIP) is SD1's CLIP-L. Pass ``text_layout="clip"`` or ``"open_clip"`` to decide
explicitly. Two encoders are always SDXL base (CLIP-L then OpenCLIP-bigG); ``text_encoder=None`` with a
``text_encoder_2`` is the SDXL refiner.

Every tensor the components hold is exported; a key this module does not know (a fused LoRA left
wrapped, an architecture the LDM layout cannot express) raises :class:`UnsupportedModelError` instead
of being dropped. The file holds exactly the layers diffusers holds: SD2 text encoders, which diffusers
keeps at 23 of OpenCLIP-H's 24 blocks, export 23 ``resblocks``, and SD2 gets no ``text_projection``
(``CLIPTextModel`` has none; nothing in SD2 uses it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..errors import UnsupportedModelError

if TYPE_CHECKING:
    # the defining modules: mypy reads diffusers' top level as its torch-less dummy objects
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

__all__ = ["TextLayout", "to_ldm_state_dict", "unet_ldm_module_names"]

#: How a single text encoder is laid out: decided from its config, OpenAI CLIP (SD1), or OpenCLIP (SD2).
TextLayout = Literal["auto", "clip", "open_clip"]

_UNET = "model.diffusion_model."
_VAE = "first_stage_model."
_SD1_TE = "cond_stage_model.transformer."
_SD2_TE = "cond_stage_model.model."
_XL_TE1 = "conditioner.embedders.0.transformer."
_XL_TE2 = "conditioner.embedders.1.model."
_XL_REFINER_TE = "conditioner.embedders.0.model."

_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "conv_shortcut": "nin_shortcut",
}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
#: Buffers older transformers kept in the state dict; not weights, never exported.
_CLIP_BUFFERS = frozenset({"text_model.embeddings.position_ids"})

_Rule = tuple[str, str, Mapping[str, str] | None]  # (diffusers prefix, LDM prefix, inner renames or None)


# ---------------------------------------------------------------------------------------------- UNet


def _unet_rules(config: Mapping[str, Any], keys: set[str]) -> list[_Rule]:
    """Prefix rules diffusers UNet → LDM ``model.diffusion_model``, derived from the UNet config."""
    per_block = config["layers_per_block"]
    if not isinstance(per_block, int):
        raise UnsupportedModelError(
            f"A UNet with per-block layers_per_block={per_block!r} has no LDM single-file layout; "
            "save it as a diffusers folder instead."
        )
    mid_type = config.get("mid_block_type", "UNetMidBlock2DCrossAttn")
    if mid_type not in ("UNetMidBlock2DCrossAttn", None):
        raise UnsupportedModelError(
            f"A UNet with mid_block_type={mid_type!r} has no LDM single-file layout; "
            "save it as a diffusers folder."
        )
    rules: list[_Rule] = [
        ("conv_in.", "input_blocks.0.0.", None),
        ("time_embedding.linear_1.", "time_embed.0.", None),
        ("time_embedding.linear_2.", "time_embed.2.", None),
        ("conv_norm_out.", "out.0.", None),
        ("conv_out.", "out.2.", None),
        ("add_embedding.linear_1.", "label_emb.0.0.", None),
        ("add_embedding.linear_2.", "label_emb.0.2.", None),
        ("class_embedding.linear_1.", "label_emb.0.0.", None),
        ("class_embedding.linear_2.", "label_emb.0.2.", None),
        ("class_embedding.weight", "label_emb.weight", None),
        ("mid_block.resnets.0.", "middle_block.0.", _UNET_RESNET),
        ("mid_block.attentions.0.", "middle_block.1.", None),
        ("mid_block.resnets.1.", "middle_block.2.", _UNET_RESNET),
    ]
    stride = per_block + 1  # LDM numbers each layer, plus one slot per block for the down/upsampler
    for i in range(len(config["block_out_channels"])):
        down, up = 1 + i * stride, i * stride  # first input_blocks / output_blocks index of block i
        for j in range(per_block):
            rules.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{down + j}.0.", _UNET_RESNET))
            rules.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{down + j}.1.", None))
        rules.append(
            (f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{down + per_block}.0.op.", None)
        )
        for j in range(stride):
            rules.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{up + j}.0.", _UNET_RESNET))
            rules.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{up + j}.1.", None))
        # The upsampler follows the last layer's attention when the block has attentions.
        slot = 2 if any(k.startswith(f"up_blocks.{i}.attentions.") for k in keys) else 1
        rules.append(
            (f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{up + per_block}.{slot}.conv.", None)
        )
    return rules


def _apply_rules(
    state: Mapping[str, torch.Tensor], rules: list[_Rule], prefix: str, what: str
) -> dict[str, torch.Tensor]:
    """Rename every key of ``state`` by the first rule whose diffusers prefix it starts with."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        for src, dst, inner in rules:
            if not key.startswith(src):
                continue
            rest = key[len(src) :]
            if inner is not None:
                head, _, tail = rest.partition(".")
                if head not in inner:
                    raise UnsupportedModelError(f"{what} key {key!r} has no LDM name ({head!r} is unknown).")
                rest = f"{inner[head]}.{tail}"
            _put(out, prefix + dst + rest, tensor, key, what)
            break
        else:
            raise UnsupportedModelError(
                f"{what} key {key!r} has no LDM name. Fuse and unload LoRAs or other adapters before "
                "exporting, or save this model as a diffusers folder."
            )
    return out


def _put(out: dict[str, torch.Tensor], name: str, tensor: torch.Tensor, source: str, what: str) -> None:
    if name in out:
        raise UnsupportedModelError(f"{what} keys collide on LDM name {name!r} (from {source!r}).")
    out[name] = tensor


def unet_ldm_module_names(unet: UNet2DConditionModel, module_names: Iterable[str]) -> dict[str, str]:
    """LDM name (without the ``model.diffusion_model.`` prefix) of each diffusers UNet module name.

    This is the naming kohya uses for SD1.x "block-style" LoRAs (``lora_unet_input_blocks_1_1_…``).
    """
    rules = _unet_rules(unet.config, set(unet.state_dict()))
    out: dict[str, str] = {}
    for name in module_names:
        (ldm,) = _apply_rules({f"{name}.weight": torch.empty(0)}, rules, "", "UNet")
        out[name] = ldm.removesuffix(".weight")
    return out


def _unet_to_ldm(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    state = unet.state_dict()
    return _apply_rules(state, _unet_rules(unet.config, set(state)), _UNET, "UNet")


# ----------------------------------------------------------------------------------------------- VAE


def _vae_rules(config: Mapping[str, Any]) -> list[_Rule]:
    blocks = len(config["block_out_channels"])
    rules: list[_Rule] = [
        ("encoder.conv_norm_out.", "encoder.norm_out.", None),
        ("decoder.conv_norm_out.", "decoder.norm_out.", None),
    ]
    for part in ("encoder", "decoder"):
        rules += [
            (f"{part}.conv_in.", f"{part}.conv_in.", None),
            (f"{part}.conv_out.", f"{part}.conv_out.", None),
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", _VAE_RESNET),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", _VAE_RESNET),
        ]
    rules += [("quant_conv.", "quant_conv.", None), ("post_quant_conv.", "post_quant_conv.", None)]
    for i in range(blocks):
        up = blocks - 1 - i  # decoder up blocks count from the bottom in LDM, from the top in diffusers
        for j in range(config["layers_per_block"] + 1):
            rules.append(
                (f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", _VAE_RESNET)
            )
            rules.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{up}.block.{j}.", _VAE_RESNET))
        rules.append(
            (f"encoder.down_blocks.{i}.downsamplers.0.conv.", f"encoder.down.{i}.downsample.conv.", None)
        )
        rules.append((f"decoder.up_blocks.{i}.upsamplers.0.conv.", f"decoder.up.{up}.upsample.conv.", None))
    return rules


def _vae_to_ldm(vae: AutoencoderKL) -> dict[str, torch.Tensor]:
    state = dict(vae.state_dict())
    out: dict[str, torch.Tensor] = {}
    for part in ("encoder", "decoder"):
        attn = f"{part}.mid_block.attentions.0."
        for key in [k for k in state if k.startswith(attn)]:
            tensor = state.pop(key)
            module, _, param = key[len(attn) :].rpartition(".")
            if module not in _VAE_ATTN:
                raise UnsupportedModelError(f"VAE key {key!r} has no LDM name.")
            if param == "weight" and tensor.ndim == 2:
                tensor = tensor.reshape(*tensor.shape, 1, 1)  # linear → the original 1x1 conv
            _put(out, f"{_VAE}{part}.mid.attn_1.{_VAE_ATTN[module]}.{param}", tensor, key, "VAE")
    out.update(_apply_rules(state, _vae_rules(vae.config), _VAE, "VAE"))
    return out


# ------------------------------------------------------------------------------------- text encoders


def _text_state(encoder: CLIPTextModel | CLIPTextModelWithProjection) -> dict[str, torch.Tensor]:
    """State dict with the ``text_model.`` prefix that transformers ≥ 5.6 drops for ``CLIPTextModel``."""
    state = encoder.state_dict()
    if not hasattr(encoder, "text_model"):
        state = {f"text_model.{k}": v for k, v in state.items()}
    return {k: v for k, v in state.items() if k not in _CLIP_BUFFERS}


def _clip_to_ldm(encoder: CLIPTextModel, prefix: str) -> dict[str, torch.Tensor]:
    """OpenAI CLIP layout: the transformers names under ``<prefix>text_model.``."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in _text_state(encoder).items():
        if not key.startswith("text_model."):
            raise UnsupportedModelError(
                f"Text encoder key {key!r} has no place in the OpenAI CLIP layout "
                "(SD1 and SDXL's first encoder are CLIPTextModel without projection)."
            )
        out[prefix + key] = tensor
    return out


def _open_clip_to_ldm(
    encoder: CLIPTextModel | CLIPTextModelWithProjection, prefix: str
) -> dict[str, torch.Tensor]:
    """OpenCLIP layout: fused q/k/v ``in_proj``, ``resblocks``, transposed ``text_projection``."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    fixed = {
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    layers = "text_model.encoder.layers."
    for key, tensor in _text_state(encoder).items():
        if key in fixed:
            _put(out, prefix + fixed[key], tensor, key, "Text encoder")
        elif key == "text_projection.weight":
            _put(out, prefix + "text_projection", tensor.t(), key, "Text encoder")
        elif key.startswith(layers):
            index, _, rest = key[len(layers) :].partition(".")
            block = f"{prefix}transformer.resblocks.{index}."
            module, _, param = rest.rpartition(".")
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault(f"{block}attn.in_proj_{param}", {})[module[-6]] = tensor
            elif module in _OPEN_CLIP_LAYER:
                _put(out, f"{block}{_OPEN_CLIP_LAYER[module]}.{param}", tensor, key, "Text encoder")
            else:
                raise UnsupportedModelError(f"Text encoder key {key!r} has no OpenCLIP name.")
        else:
            raise UnsupportedModelError(f"Text encoder key {key!r} has no OpenCLIP name.")
    for name, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise UnsupportedModelError(
                f"Text encoder lacks one of q/k/v for {name!r}; the model is incomplete."
            )
        _put(out, name, torch.cat([parts["q"], parts["k"], parts["v"]], dim=0), name, "Text encoder")
    return out


def _single_text_layout(encoder: CLIPTextModel | CLIPTextModelWithProjection, text_layout: TextLayout) -> str:
    if text_layout == "auto":
        return "open_clip" if getattr(encoder.config, "hidden_act", None) == "gelu" else "clip"
    if text_layout not in ("clip", "open_clip"):
        raise UnsupportedModelError(
            f"text_layout must be 'auto', 'clip' or 'open_clip', not {text_layout!r}."
        )
    return text_layout


def to_ldm_state_dict(
    unet: UNet2DConditionModel,
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel | None,
    text_encoder_2: CLIPTextModelWithProjection | None = None,
    *,
    text_layout: TextLayout = "auto",
) -> dict[str, torch.Tensor]:
    """The components' tensors under their original (A1111/LDM) names.

    Args:
        unet: a ``UNet2DConditionModel`` with an integer ``layers_per_block`` and a cross-attention mid block.
        vae: an ``AutoencoderKL``.
        text_encoder: SD1/SD2's encoder, SDXL base's first (CLIP-L) encoder, or ``None`` for the SDXL refiner.
        text_encoder_2: SDXL's OpenCLIP encoder (``CLIPTextModelWithProjection``), else ``None``.
        text_layout: layout of a lone ``text_encoder`` (see the module docstring); must stay ``"auto"`` for
            SDXL, whose layout is fixed by the encoder's role.

    Returns:
        A new dict; its tensors may share memory with the models (use :func:`save_single_file` to write).

    Raises:
        UnsupportedModelError: a key with no LDM name, or components that form no known pipeline.
    """
    state = _unet_to_ldm(unet)
    state.update(_vae_to_ldm(vae))
    if text_encoder_2 is not None:
        if text_layout != "auto":
            raise UnsupportedModelError(
                "text_layout applies to single-encoder pipelines (SD1/SD2); SDXL's layout is fixed: "
                "leave text_layout='auto'."
            )
        if text_encoder is None:  # SDXL refiner: OpenCLIP-bigG alone, as embedder 0
            state.update(_open_clip_to_ldm(text_encoder_2, _XL_REFINER_TE))
        else:
            state.update(_clip_to_ldm(text_encoder, _XL_TE1))
            state.update(_open_clip_to_ldm(text_encoder_2, _XL_TE2))
    elif text_encoder is None:
        raise UnsupportedModelError(
            "No text encoder given: an LDM checkpoint needs text_encoder (or text_encoder_2)."
        )
    elif _single_text_layout(text_encoder, text_layout) == "open_clip":
        state.update(_open_clip_to_ldm(text_encoder, _SD2_TE))
    else:
        state.update(_clip_to_ldm(text_encoder, _SD1_TE))
    return state
