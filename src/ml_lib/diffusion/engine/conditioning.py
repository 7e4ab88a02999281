"""Text conditioning: prompt → embeddings for SD1.x/SD2.x (our own encoder) and SDXL (diffusers').

SD1.x/SD2.x are encoded here because diffusers 0.42's clip-skip path reaches for
``text_encoder.text_model``, which transformers ≥ 5 no longer has. Clip skip counts as A1111 does:
1 is the last layer; n > 1 takes the n-th layer from the end, then the final layer norm.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["encode_sd", "encode_sdxl"]


def _final_layer_norm(text_encoder: Any) -> Any:
    inner = getattr(text_encoder, "text_model", text_encoder)
    return inner.final_layer_norm


def _embed(pipe: Any, text: str, clip_skip: int, device: torch.device) -> torch.Tensor:
    tok = pipe.tokenizer
    ids = tok(
        text, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt"
    )
    encoder = pipe.text_encoder
    mask = ids.attention_mask.to(device) if getattr(encoder.config, "use_attention_mask", False) else None
    out = encoder(ids.input_ids.to(device), attention_mask=mask, output_hidden_states=clip_skip > 1)
    hidden = _final_layer_norm(encoder)(out.hidden_states[-clip_skip]) if clip_skip > 1 else out[0]
    return hidden.to(dtype=encoder.dtype, device=device)


def encode_sd(
    pipe: Any, prompt: str, negative: str, *, batch: int, clip_skip: int, cfg: bool, device: torch.device
) -> dict[str, torch.Tensor]:
    """``prompt_embeds`` (and ``negative_prompt_embeds`` when ``cfg``) for a StableDiffusionPipeline."""
    with torch.inference_mode():
        out = {"prompt_embeds": _embed(pipe, prompt, clip_skip, device).repeat(batch, 1, 1)}
        if cfg:
            out["negative_prompt_embeds"] = _embed(pipe, negative, clip_skip, device).repeat(batch, 1, 1)
    return out


def encode_sdxl(
    pipe: Any, prompt: str, negative: str, *, batch: int, clip_skip: int, cfg: bool, device: torch.device
) -> dict[str, torch.Tensor]:
    """Embeddings and pooled embeddings for a StableDiffusionXLPipeline (penultimate layer by default)."""
    with torch.inference_mode():
        pe, ne, pp, npp = pipe.encode_prompt(
            prompt=prompt,
            device=device,
            num_images_per_prompt=batch,
            do_classifier_free_guidance=cfg,
            negative_prompt=negative or None,
            clip_skip=clip_skip - 1 or None,
        )
    out = {"prompt_embeds": pe, "pooled_prompt_embeds": pp}
    if cfg:
        out.update(negative_prompt_embeds=ne, negative_pooled_prompt_embeds=npp)
    return out
