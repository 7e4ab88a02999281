"""The demo model's tokenizer: the OpenAI CLIP BPE table cut down to the merges the demo captions use.

The kept merges are those the full table applies to each world-1 word (:data:`WORLD1_WORDS`), in their
original order, so the cut table tokenises these words as CLIP does; merges appended at the end make the
words CLIP splits (``cyan``, the trigger ``dmstripes``) single tokens. World 2's new words are grown onto
that table: their merges and tokens come after everything world 1 had, so every world-1 token keeps its id
(653 ids: 512 bytes, 139 merges, ``<|startoftext|>`` 651, ``<|endoftext|>`` 652) and the shipped text
encoder's embedding rows stay valid; :func:`grow_embeddings` adds rows for the new ids. Other text falls
back to pieces and bytes.
"""

from __future__ import annotations

import importlib.resources
import json
from typing import TYPE_CHECKING

from .world import vocabulary

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

__all__ = ["NEW_WORD_SEEDS", "WORLD1_WORDS", "demo_merges", "demo_tokenizer", "grow_embeddings"]

#: The world-1 vocabulary, frozen: its tokens keep the ids the shipped text encoder was trained with.
WORLD1_WORDS = [
    "a",
    "at",
    "background",
    "beige",
    "big",
    "black",
    "blue",
    "bottom",
    "center",
    "centered",
    "circle",
    "cyan",
    "dark",
    "dmstripes",
    "gradient",
    "gray",
    "green",
    "in",
    "large",
    "left",
    "light",
    "little",
    "middle",
    "near",
    "on",
    "orange",
    "over",
    "pink",
    "purple",
    "red",
    "right",
    "ring",
    "side",
    "small",
    "square",
    "star",
    "style",
    "the",
    "tiny",
    "to",
    "top",
    "triangle",
    "white",
    "with",
    "yellow",
]
#: Words whose embeddings start a new word's row (their mean); others start from the mean of all words.
NEW_WORD_SEEDS: dict[str, tuple[str, ...]] = {
    "against": ("on", "over"),
    "an": ("a",),
    "backdrop": ("background",),
    "brown": ("orange", "black"),
    "centre": ("center",),
    "image": ("background",),
    "of": ("the",),
}

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


def _cut(words: list[str] | tuple[str, ...], merges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``merges`` plus the merges (CLIP's where it has them, in CLIP's order, then left-to-right joins)
    that make each of ``words`` one token; nothing already in ``merges`` moves."""
    _, clip = _clip_table()
    clip_ranks = {pair: i for i, pair in enumerate(clip)}
    table = {pair: i for i, pair in enumerate(merges)}
    used: set[tuple[str, str]] = set()
    for word in words:
        used |= _bpe(word, clip_ranks)[1]
    added = [pair for pair in sorted(used - set(table), key=clip_ranks.__getitem__)]
    for pair in added:
        table[pair] = len(table)
    for word in words:
        pieces = _bpe(word, table)[0]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            if pair not in table:
                table[pair] = len(table)
                added.append(pair)
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
    return [*merges, *added]


def demo_merges() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The world-1 merges (as shipped), and the merges grown after them for the rest of the vocabulary."""
    world1 = _cut(WORLD1_WORDS, [])
    grown = _cut(vocabulary(), world1)
    return world1, grown[len(world1) :]


def demo_tokenizer() -> CLIPTokenizer:
    """A ``CLIPTokenizer``: 512 byte tokens, the world-1 merges, ``<|startoftext|>``, ``<|endoftext|>``,
    then the tokens grown for world 2."""
    from transformers import CLIPTokenizer

    full_vocab, _ = _clip_table()
    world1, grown = demo_merges()
    by_id = sorted(full_vocab, key=full_vocab.__getitem__)
    tokens = [*by_id[:_BYTE_TOKENS], *(a + b for a, b in world1), _BOS, _EOS]
    tokens += [t for t in dict.fromkeys(a + b for a, b in grown) if t not in set(tokens)]
    vocab = {token: index for index, token in enumerate(tokens)}
    merges = [*world1, *grown]
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=_BOS,
        eos_token=_EOS,
        unk_token=_EOS,
        pad_token=_EOS,
        model_max_length=77,
    )


def grow_embeddings(state_dict: dict, tokenizer: CLIPTokenizer) -> dict:
    """A text-encoder state dict whose token embedding has a row for every id of ``tokenizer``.

    Rows already there are kept; a new word's row starts at the mean of its :data:`NEW_WORD_SEEDS`
    words' rows (or of every whole-word row), so it begins near related words rather than at noise.
    """
    import torch

    key = next(k for k in state_dict if k.endswith("token_embedding.weight"))
    old = state_dict[key]
    size = len(tokenizer)
    if old.shape[0] >= size:
        return state_dict
    vocab = tokenizer.get_vocab()
    whole = [vocab[f"{w}</w>"] for w in WORLD1_WORDS if vocab.get(f"{w}</w>", size) < old.shape[0]]
    rows = old.new_empty((size, old.shape[1]))
    rows[: old.shape[0]] = old
    rows[old.shape[0] :] = old[whole].mean(dim=0)
    for word, seeds in NEW_WORD_SEEDS.items():
        index = vocab.get(f"{word}</w>")
        if index is not None and index >= old.shape[0]:
            rows[index] = torch.stack([old[vocab[f"{s}</w>"]] for s in seeds]).mean(dim=0)
    return {**state_dict, key: rows}
