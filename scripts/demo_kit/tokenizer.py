"""The demo model's tokenizer: the OpenAI CLIP BPE table cut down to the merges the demo captions use.

The kept merges are those the full table applies to each demo word, in their original order, so the cut
table tokenises these words as CLIP does; a few merges appended at the end make the words CLIP splits
(``cyan``, the trigger ``dmstripes``) single tokens. Other text falls back to pieces and bytes.
"""

from __future__ import annotations

import importlib.resources
import json
from typing import TYPE_CHECKING

from .world import vocabulary

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

__all__ = ["demo_merges", "demo_tokenizer"]

_BYTE_TOKENS = 512
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _clip_table() -> tuple[dict[str, int], list[tuple[str, str]]]:
    folder = importlib.resources.files("ml_lib.diffusion") / "assets" / "clip_tokenizer"
    vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    return vocab, merges  # type: ignore[return-value]


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> tuple[list[str], set[tuple[str, str]]]:
    """BPE of ``word`` under ``ranks``: its pieces and the merges applied (ASCII maps to itself in CLIP)."""
    parts = [*word[:-1], word[-1] + "</w>"]
    used: set[tuple[str, str]] = set()
    while len(parts) > 1:
        pairs = [(parts[i], parts[i + 1]) for i in range(len(parts) - 1)]
        best = min(pairs, key=lambda p: ranks.get(p, 1 << 30))
        if best not in ranks:
            break
        used.add(best)
        merged: list[str] = []
        i = 0
        while i < len(parts):
            if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts, used


def demo_merges() -> list[tuple[str, str]]:
    """The CLIP merges the demo vocabulary needs, in CLIP's order, then merges that make each word whole.

    Words CLIP splits (``cyan`` → ``cy an``, the trigger ``dmstripes``) get extra merges at the end of the
    table, joining their pieces left to right, so every demo word is one token.
    """
    _, merges = _clip_table()
    ranks = {pair: i for i, pair in enumerate(merges)}
    used: set[tuple[str, str]] = set()
    for word in vocabulary():
        used |= _bpe(word, ranks)[1]
    kept = sorted(used, key=ranks.__getitem__)
    extra: list[tuple[str, str]] = []
    kept_ranks = {pair: i for i, pair in enumerate(kept)}
    for word in vocabulary():
        pieces = _bpe(word, kept_ranks)[0]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in kept_ranks:
                kept_ranks[pair] = len(kept_ranks)
                extra.append(pair)
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
    return [*kept, *extra]


def demo_tokenizer() -> CLIPTokenizer:
    """A ``CLIPTokenizer``: 512 byte tokens, the demo merges, ``<|startoftext|>``, ``<|endoftext|>``."""
    from transformers import CLIPTokenizer

    full_vocab, _ = _clip_table()
    merges = demo_merges()
    by_id = sorted(full_vocab, key=full_vocab.__getitem__)
    tokens = [*by_id[:_BYTE_TOKENS], *(a + b for a, b in merges), _BOS, _EOS]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=_BOS,
        eos_token=_EOS,
        unk_token=_EOS,
        pad_token=_EOS,
        model_max_length=77,
    )
