"""What a safetensors file is (checkpoint, UNet alone, LoRA, ControlNet, VAE, IP-Adapter, encoders,
embedding) and for which family, from tensor names and shapes only.

Matchers are tried in registry order (:data:`KIND_MATCHERS`, most specific first); the first that
recognises the layout wins. Full checkpoints reuse :func:`probe.detect_family`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .families import CONTEXT_FAMILIES, Family, PredictionType
from .header import SafetensorsHeader
from .lora import analyse_lora
from .probe import detect_family
from .records import ModelInfo, ModelKind

__all__ = ["KIND_MATCHERS", "identify_header"]

KindMatcher = Callable[[SafetensorsHeader], "ModelInfo | None"]

_TO_K = re.compile(r"^[^\n]*attn2\.to_k(?:\.weight|\.down)$", re.M)
_FULL_PARTS = ("cond_stage_model.", "conditioner.", "first_stage_model.", "text_encoders.", "vae.")
_VISION = {1024: "ViT-L/14", 1280: "ViT-H/14", 1664: "ViT-bigG/14"}
_TEXT = {768: "CLIP-L", 1024: "OpenCLIP-H", 1280: "OpenCLIP-bigG"}


def _info(h: SafetensorsHeader, kind: ModelKind, family: Family, reason: str, **kw: object) -> ModelInfo:
    return ModelInfo(kind=kind, family=family, reason=reason, tensors=len(h.tensors), **kw)  # type: ignore[arg-type]


def _cross_attention(h: SafetensorsHeader, prefix: str = "") -> tuple[Family, str] | None:
    """Family from the input width of the first cross-attention key projection under ``prefix``."""
    for name in h.matching(_TO_K):
        if name.startswith(prefix):
            width = h.tensors[name].shape[-1]
            if width in CONTEXT_FAMILIES:
                return CONTEXT_FAMILIES[width], f"cross-attention width {width}"
            return None
    return None


def _control_lora(h: SafetensorsHeader) -> ModelInfo | None:
    if "lora_controlnet" not in h.tensors:
        return None
    found = _cross_attention(h)
    if found is None and h.has_part("label_emb"):
        found = (Family.SDXL, "label embedding (SDXL)")
    family, why = found or (Family.UNKNOWN, "no cross-attention keys")
    return _info(h, ModelKind.CONTROLNET, family, f"Stability control-LoRA ('lora_controlnet'); {why}",
                 variant="control-lora")  # fmt: skip


def _ip_adapter(h: SafetensorsHeader) -> ModelInfo | None:
    if h.has_prefix("double_blocks.") and h.has_part("ip_adapter_double_stream"):
        return _info(h, ModelKind.IP_ADAPTER, Family.FLUX, "XLabs Flux IP-Adapter layers", variant="flux")
    if not (h.has_prefix("image_proj.") and h.has_prefix("ip_adapter.")):
        return None
    key = h.first(prefix="ip_adapter.", suffix=".to_k_ip.weight")
    width = h.tensors[key].shape[-1] if key else None
    family = CONTEXT_FAMILIES.get(width or 0, Family.UNKNOWN)
    if h.has_part("_lora.") or h.has_prefix("image_proj.proj.0."):
        variant = "faceid"
    elif "image_proj.latents" in h.tensors:
        variant = "plus"
    else:
        variant = "base"
    return _info(h, ModelKind.IP_ADAPTER, family, f"image_proj + ip_adapter layers; to_k_ip width {width}",
                 variant=variant)  # fmt: skip


def _controlnet(h: SafetensorsHeader) -> ModelInfo | None:
    if h.has_prefix("control_model."):
        if h.has_prefix("control_model.label_emb."):
            found: tuple[Family, str] | None = (Family.SDXL, "label embedding (SDXL)")
        else:
            found = _cross_attention(h, "control_model.")
        family, why = found or (Family.UNKNOWN, "no cross-attention width we know")
        return _info(
            h, ModelKind.CONTROLNET, family, f"LDM ControlNet (control_model.*); {why}", variant="full"
        )
    if h.has_prefix("controlnet_cond_embedding."):
        found = (
            (Family.SDXL, "add_embedding (SDXL)") if h.has_prefix("add_embedding.") else _cross_attention(h)
        )
        family, why = found or (Family.UNKNOWN, "no cross-attention width we know")
        return _info(h, ModelKind.CONTROLNET, family, f"diffusers ControlNet; {why}", variant="full")
    if h.has_prefix("controlnet_blocks.") or h.has_prefix("controlnet_x_embedder."):
        flux = h.has_prefix("controlnet_x_embedder.") or h.has_prefix("single_transformer_blocks.")
        family = Family.FLUX if flux else Family.SD3
        return _info(
            h, ModelKind.CONTROLNET, family, "diffusion-transformer ControlNet blocks", variant="full"
        )
    if h.has_prefix("adapter.body.") or (h.has_prefix("body.0.") and h.has_prefix("conv_in.")):
        return _info(h, ModelKind.CONTROLNET, Family.UNKNOWN, "T2I-Adapter body; family not in the shapes",
                     variant="t2i-adapter")  # fmt: skip
    return None


def _embedding(h: SafetensorsHeader) -> ModelInfo | None:
    if len(h.tensors) > 8:
        return None
    names = set(h.tensors)
    if not names & {"emb_params", "clip_l", "clip_g"} and not h.has_prefix("string_to_param."):
        return None
    if {"clip_l", "clip_g"} <= names:
        n = h.tensors["clip_g"].shape[0] if h.tensors["clip_g"].shape else 0
        return _info(
            h, ModelKind.EMBEDDING, Family.SDXL, "clip_l + clip_g vectors (SDXL)", variant=f"{n} vectors"
        )
    key = "emb_params" if "emb_params" in names else h.first(prefix="string_to_param.")
    shape = h.tensors[key].shape if key else ()
    width = shape[-1] if shape else 0
    family = {768: Family.SD1, 1024: Family.SD2}.get(width, Family.UNKNOWN)
    n = shape[0] if len(shape) > 1 else 1
    return _info(
        h, ModelKind.EMBEDDING, family, f"textual inversion, {width}-wide vectors", variant=f"{n} vectors"
    )


def _dit_variant(h: SafetensorsHeader, family: Family) -> str:
    if family is Family.FLUX:
        dev = h.has_part("guidance_in.") or h.has_part("guidance_embedder.")
        return "flux-dev" if dev else "flux-schnell"
    if h.has_part("x_block.attn2."):
        return "3.5-medium"
    blocks = h.count_suffix(".x_block.attn.qkv.weight")
    return {24: "3-medium", 38: "3.5-large"}.get(blocks, f"{blocks} joint blocks")


def _checkpoint(h: SafetensorsHeader) -> ModelInfo | None:
    guess = detect_family(h)
    if guess.family is Family.UNKNOWN:
        return None
    full = any(h.has_prefix(p) for p in _FULL_PARTS)
    kind = ModelKind.CHECKPOINT if full else ModelKind.UNET
    variant = _dit_variant(h, guess.family) if guess.family in (Family.FLUX, Family.SD3) else ""
    reason = guess.reason if full else f"{guess.reason}; no text encoder or VAE: transformer/UNet alone"
    return _info(h, kind, guess.family, reason, prediction_type=guess.prediction_type, variant=variant,
                 standard=guess.standard)  # fmt: skip


def _unet(h: SafetensorsHeader) -> ModelInfo | None:
    for prefix in ("model.diffusion_model.", ""):
        if h.has_prefix(prefix + "input_blocks.") and h.has_prefix(prefix + "output_blocks."):
            label = h.shape(prefix + "label_emb.0.0.weight")
            if label:
                found: tuple[Family, str] | None = (
                    Family.SDXL_REFINER if label[-1] == 2560 else Family.SDXL,
                    f"label embedding width {label[-1]}",
                )
            else:
                found = _cross_attention(h, prefix)
            family, why = found or (Family.UNKNOWN, "no cross-attention width we know")
            return _info(h, ModelKind.UNET, family, f"LDM UNet without text encoder or VAE; {why}")
    if h.has_prefix("conv_in.") and h.has_prefix("down_blocks.") and h.has_prefix("time_embedding."):
        found = (
            (Family.SDXL, "add_embedding (SDXL)") if h.has_prefix("add_embedding.") else _cross_attention(h)
        )
        family, why = found or (Family.UNKNOWN, "no cross-attention width we know")
        return _info(h, ModelKind.UNET, family, f"diffusers UNet; {why}")
    if h.has_prefix("single_transformer_blocks.") and h.has_prefix("transformer_blocks."):
        return _info(h, ModelKind.UNET, Family.FLUX, "diffusers Flux transformer",
                     variant=_dit_variant(h, Family.FLUX))  # fmt: skip
    if h.has_prefix("transformer_blocks.") and h.has_prefix("context_embedder."):
        return _info(h, ModelKind.UNET, Family.SD3, "diffusers SD3 transformer")
    return None


def _vae(h: SafetensorsHeader) -> ModelInfo | None:
    for prefix in ("", "first_stage_model.", "vae."):
        shape = h.shape(prefix + "decoder.conv_in.weight")
        if shape and len(shape) == 4 and h.has_prefix(prefix + "encoder."):
            break
    else:
        return None
    latent, name = shape[1], h.path.stem.lower()
    if latent == 16:
        family = (
            Family.FLUX
            if ("flux" in name or name == "ae")
            else Family.SD3
            if "sd3" in name
            else Family.UNKNOWN
        )
        why = "16 latent channels (SD3 and Flux VAEs share shapes)"
    elif latent == 4:
        family = Family.SDXL if re.search(r"xl|sdxl", name) else Family.UNKNOWN
        why = "4 latent channels (SD1.x, SD2.x and SDXL VAEs share shapes)"
    else:
        family, why = Family.UNKNOWN, f"{latent} latent channels"
    if family is not Family.UNKNOWN:
        why += f"; the file name says {family.value}"
    return _info(h, ModelKind.VAE, family, f"KL VAE, {why}", variant=f"{latent}-channel")


def _image_encoder(h: SafetensorsHeader) -> ModelInfo | None:
    shape = h.shape("vision_model.embeddings.patch_embedding.weight") or h.shape("visual.conv1.weight")
    if not shape:
        return None
    variant = _VISION.get(shape[0], f"ViT width {shape[0]}")
    return _info(h, ModelKind.IMAGE_ENCODER, Family.UNKNOWN,
                 f"CLIP vision encoder {variant}; image encoders serve several families", variant=variant)  # fmt: skip


def _text_encoder(h: SafetensorsHeader) -> ModelInfo | None:
    key = h.first(suffix="text_model.embeddings.token_embedding.weight") or h.first(
        suffix="token_embedding.weight"
    )
    if key is not None and h.shape(key):
        width = h.tensors[key].shape[-1]
        variant = _TEXT.get(width, f"CLIP width {width}")
        return _info(h, ModelKind.TEXT_ENCODER, Family.UNKNOWN,
                     f"{variant} text encoder; shared by several families", variant=variant)  # fmt: skip
    if h.has_part("encoder.block.0.layer.0.SelfAttention."):
        shared = h.shape("shared.weight") or h.shape("encoder.embed_tokens.weight") or (0, 0)
        variant = "T5-XXL" if shared[-1] == 4096 else f"T5 width {shared[-1]}"
        return _info(h, ModelKind.TEXT_ENCODER, Family.UNKNOWN, f"{variant} text encoder (SD3, Flux)",
                     variant=variant)  # fmt: skip
    return None


#: Ordered registry, most specific layouts first.
KIND_MATCHERS: tuple[KindMatcher, ...] = (
    _control_lora,
    _ip_adapter,
    analyse_lora,
    _controlnet,
    _embedding,
    _checkpoint,
    _unet,
    _vae,
    _image_encoder,
    _text_encoder,
)


def identify_header(h: SafetensorsHeader) -> ModelInfo:
    """Kind and family of a safetensors file (UNKNOWN kind, with the reason, when no matcher fits)."""
    for matcher in KIND_MATCHERS:
        info = matcher(h)
        if info is not None:
            return info
    if not h.tensors:
        return _info(h, ModelKind.UNKNOWN, Family.UNKNOWN, "no tensors in the file")
    sample = ", ".join(list(h.tensors)[:3])
    return ModelInfo(
        kind=ModelKind.UNKNOWN,
        family=Family.UNKNOWN,
        reason=f"no matcher knows this layout ({len(h.tensors)} tensors, e.g. {sample})",
        prediction_type=PredictionType.EPSILON,
        tensors=len(h.tensors),
    )
