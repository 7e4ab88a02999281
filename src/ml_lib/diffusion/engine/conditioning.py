"""Prompt conditioning with A1111's semantics for SD1.x, SD2.x and SDXL.

Weighted and long prompts (:mod:`.prompt_chunks`): each 77-token chunk is encoded on its own, token
embeddings are multiplied by their emphasis weight and rescaled to the chunk's original mean
(A1111's "Original" emphasis), chunks are concatenated; positive and negative are padded to the same
number of chunks with empty-prompt chunks (A1111's ``pad_cond_uncond``); SDXL's pooled embedding comes
from the first chunk. Clip skip counts as A1111 does: 1 is the last layer; n > 1 takes the n-th layer
from the end then the final layer norm (SD1/SD2); SDXL uses the penultimate layer, one more per skip.
"""

from __future__ import annotations

from typing import Any

import torch

from ..prompt.networks import strip_networks
from .embeddings import expand_embeddings
from .prompt_chunks import TokenChunk, chunk_prompt, empty_chunk

__all__ = ["encode_sd", "encode_sdxl", "encode_text", "prompt_chunks"]


def _ids(tokenizer: Any) -> tuple[int, int, int, int | None]:
    vocab = tokenizer.get_vocab()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return tokenizer.bos_token_id, eos, pad, vocab.get(",</w>")


def prompt_chunks(tokenizer: Any, text: str, pipe: Any = None) -> tuple[TokenChunk, ...]:
    """A1111 chunks of ``text`` for ``tokenizer`` (LoRA tags removed; ``pipe``'s embeddings expanded)."""
    bos, eos, _pad, comma = _ids(tokenizer)
    text = strip_networks(text)
    if pipe is not None:
        text = expand_embeddings(pipe, text, tokenizer)

    def tokenize(texts: Any) -> list[list[int]]:
        return tokenizer(list(texts), truncation=False, add_special_tokens=False)["input_ids"]

    return chunk_prompt(text, tokenize, bos=bos, eos=eos, comma=comma)


def _final_layer_norm(text_encoder: Any) -> Any:
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm


def _encode_chunk(
    encoder: Any, chunk: TokenChunk, *, eos: int, pad: int, layer: int, norm: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hidden states of one chunk (emphasis applied, mean restored) and its pooled output if any."""
    ids = list(chunk.tokens)
    if pad != eos:  # SD2/OpenCLIP: positions after the first EOS hold the pad token
        first = ids.index(eos)
        ids = ids[: first + 1] + [pad] * (len(ids) - first - 1)
    tokens = torch.tensor([ids], device=device)
    out = encoder(tokens, output_hidden_states=layer != -1)
    if layer == -1:
        z = out[0]
    else:
        z = out.hidden_states[layer]
        if norm:
            z = _final_layer_norm(encoder)(z)
    return _emphasis(z, chunk.weights), getattr(out, "text_embeds", None)


def _emphasis(z: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """A1111's "Original" emphasis: scale each token by its weight, then restore the chunk's mean.

    Unweighted chunks are returned untouched (bit-identical to plain encoding); a chunk whose mean is 0
    after weighting (possible only with untrained layer norms) is left unrescaled instead of dividing by 0.
    """
    if all(w == 1.0 for w in weights):
        return z
    original_mean = z.mean()
    weighted = z * torch.tensor(weights, device=z.device, dtype=z.dtype).reshape(1, -1, 1)
    new_mean = weighted.mean()
    if new_mean == 0 or not torch.isfinite(original_mean / new_mean):
        return weighted
    return weighted * (original_mean / new_mean)


def _encode_text(
    pipe: Any, which: int, text: str, *, layer: int, norm: bool, device: torch.device, chunks: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    tokenizer, encoder = _pair(pipe, which)
    bos, eos, pad, _comma = _ids(tokenizer)
    parts = list(prompt_chunks(tokenizer, text, pipe))
    parts += [empty_chunk(bos, eos)] * (chunks - len(parts))
    encoded = [
        _encode_chunk(encoder, c, eos=eos, pad=pad, layer=layer, norm=norm, device=device) for c in parts
    ]
    return torch.cat([z for z, _ in encoded], dim=1), encoded[0][1]


def _pair(pipe: Any, which: int) -> tuple[Any, Any]:
    """(tokenizer, text encoder) number ``which`` (1 or 2) of ``pipe``."""
    suffix = "" if which == 1 else "_2"
    return getattr(pipe, "tokenizer" + suffix, None), getattr(pipe, "text_encoder" + suffix, None)


def _chunk_count(pipe: Any, texts: tuple[str, ...], which: tuple[int, ...] = (1,)) -> int:
    return max(
        len(prompt_chunks(_pair(pipe, i)[0], t, pipe))
        for i in which
        if _pair(pipe, i)[1] is not None
        for t in texts
    )


def encode_sd(
    pipe: Any, prompt: str, negative: str, *, batch: int, clip_skip: int, cfg: bool, device: torch.device
) -> dict[str, torch.Tensor]:
    """``prompt_embeds`` (and ``negative_prompt_embeds`` when ``cfg``) for a StableDiffusionPipeline."""
    enc = pipe.text_encoder
    layer, norm = (-1, False) if clip_skip <= 1 else (-clip_skip, True)
    texts = (prompt, negative) if cfg else (prompt,)
    n = _chunk_count(pipe, texts)
    with torch.inference_mode():
        out = {
            "prompt_embeds": _encode_text(pipe, 1, prompt, layer=layer, norm=norm, device=device, chunks=n)[0]
        }
        if cfg:
            neg = _encode_text(pipe, 1, negative, layer=layer, norm=norm, device=device, chunks=n)[0]
            out["negative_prompt_embeds"] = neg
    return {k: v.to(enc.dtype).repeat(batch, 1, 1) for k, v in out.items()}


def _sdxl_pair(
    pipe: Any, text: str, layer: int, device: torch.device, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    zs, pooled = [], None
    for which in (1, 2):
        if _pair(pipe, which)[1] is None:
            continue
        z, p = _encode_text(pipe, which, text, layer=layer, norm=False, device=device, chunks=n)
        zs.append(z)
        pooled = p if p is not None else pooled
    if pooled is None:
        raise RuntimeError("SDXL's second text encoder gave no pooled output")
    return torch.cat(zs, dim=-1), pooled


def encode_sdxl(
    pipe: Any,
    prompt: str,
    negative: str,
    *,
    batch: int,
    clip_skip: int,
    cfg: bool,
    device: torch.device,
    zero_empty_negative: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Embeddings and pooled embeddings for a StableDiffusionXLPipeline (penultimate layer by default).

    An empty negative prompt becomes zero embeddings when ``zero_empty_negative`` (A1111), is encoded
    when False (ComfyUI), and follows the pipeline's ``force_zeros_for_empty_prompt`` when None.
    """
    if zero_empty_negative is None:
        zero_empty_negative = bool(pipe.config.get("force_zeros_for_empty_prompt", False))
    layer = -(clip_skip + 1)
    texts = (prompt, negative) if cfg else (prompt,)
    n = _chunk_count(pipe, texts, (1, 2))
    with torch.inference_mode():
        pe, pp = _sdxl_pair(pipe, prompt, layer, device, n)
        out = {"prompt_embeds": pe, "pooled_prompt_embeds": pp}
        if cfg:
            if not negative and zero_empty_negative:
                ne, npp = torch.zeros_like(pe), torch.zeros_like(pp)
            else:
                ne, npp = _sdxl_pair(pipe, negative, layer, device, n)
            out.update(negative_prompt_embeds=ne, negative_pooled_prompt_embeds=npp)
    dtype = pipe.text_encoder_2.dtype
    return {k: v.to(dtype).repeat(batch, *([1] * (v.dim() - 1))) for k, v in out.items()}


def encode_text(
    pipe: Any, text: str, *, sdxl: bool, clip_skip: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``text`` alone, as :func:`encode_sd` / :func:`encode_sdxl` encode it but with only its own chunks
    (no padding to another prompt's count; chunks are encoded one by one, so padding afterwards with the
    encoded empty prompt gives the same tensor) in the text encoder's dtype, batch 1; with SDXL's pooled
    output (None for SD)."""
    with torch.inference_mode():
        if sdxl:
            z, pooled = _sdxl_pair(pipe, text, -(clip_skip + 1), device, 0)
            dtype = pipe.text_encoder_2.dtype
            return z.to(dtype), pooled.to(dtype)
        layer, norm = (-1, False) if clip_skip <= 1 else (-clip_skip, True)
        z = _encode_text(pipe, 1, text, layer=layer, norm=norm, device=device, chunks=0)[0]
        return z.to(pipe.text_encoder.dtype), None
