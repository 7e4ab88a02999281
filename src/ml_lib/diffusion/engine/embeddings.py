"""Textual-inversion embeddings on a loaded pipeline: exactly the plan's set is loaded.

A1111 files (``emb_params``, ``string_to_param``) and diffusers files load through diffusers'
``load_textual_inversion``; SDXL files (``clip_l`` + ``clip_g``) load one part into each encoder.
Tokens of embeddings the plan does not use are removed, so a prompt word never silently picks up an
embedding left over from an earlier generation.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from safetensors.torch import load_file

from .._assets import local_path
from ..errors import ModelUnreadableError
from ..plan import EmbeddingUse
from ._quiet import no_progress_bars

__all__ = ["apply_embeddings", "expand_embeddings"]

log = logging.getLogger(__name__)
_EXPLICIT = re.compile(r"\bembedding:([^\s,()\[\]<>|:]+)", re.I)


def _load(pipe: Any, use: EmbeddingUse) -> None:
    try:
        path = local_path(use.path)
        state = load_file(path)
        with no_progress_bars():
            if {"clip_l", "clip_g"} <= set(state):
                pipe.load_textual_inversion(
                    state["clip_l"], token=use.name, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
                )
                pipe.load_textual_inversion(
                    state["clip_g"],
                    token=use.name,
                    text_encoder=pipe.text_encoder_2,
                    tokenizer=pipe.tokenizer_2,
                )
            else:
                pipe.load_textual_inversion(path, token=use.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelUnreadableError(f"Cannot load embedding {use.name} ({use.path}): {exc}") from exc


def _unload(pipe: Any, name: str) -> None:
    pairs = [
        (pipe.tokenizer, pipe.text_encoder),
        (getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None)),
    ]
    for tokenizer, encoder in pairs:
        if tokenizer is None or encoder is None:
            continue
        tokens = [t for t in tokenizer.get_vocab() if t == name or re.fullmatch(re.escape(name) + r"_\d+", t)]
        if tokens:
            pipe.unload_textual_inversion(tokens=tokens, tokenizer=tokenizer, text_encoder=encoder)


def apply_embeddings(pipe: Any, loaded: dict[str, str], embeddings: tuple[EmbeddingUse, ...]) -> None:
    """Load the plan's embeddings into ``pipe`` and remove any others; ``loaded`` (name → path) is the
    pipeline's record of what is in it, updated here."""
    wanted = {e.name: e for e in embeddings}
    for name in [n for n in loaded if n not in wanted or loaded[n] != wanted[n].path]:
        _unload(pipe, name)
        del loaded[name]
    for name, use in wanted.items():
        if name not in loaded:
            log.info("loading embedding %s from %s", name, use.path)
            _load(pipe, use)
            loaded[name] = use.path


def expand_embeddings(pipe: Any, text: str, tokenizer: Any) -> str:
    """``embedding:name`` → ``name``, then each multi-vector name → its tokens (diffusers' convention)."""
    text = _EXPLICIT.sub(lambda m: m.group(1), text)
    return pipe.maybe_convert_prompt(text, tokenizer)  # a no-op for words that are not embeddings
