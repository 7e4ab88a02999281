"""A1111's prompt → token chunks: 75 tokens per chunk between BOS and EOS, BREAK starts a new chunk,
a chunk boundary moves back to a comma within 20 tokens, each token carries its emphasis weight.

Pure logic over a tokenizer callable (no torch), mirroring ``FrozenCLIPEmbedderWithCustomWordsBase
.tokenize_line`` of AUTOMATIC1111 (comma padding backtrack 20, emphasis "Original").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..prompt.attention import parse_prompt_attention

__all__ = ["CHUNK_LENGTH", "COMMA_BACKTRACK", "TokenChunk", "chunk_prompt", "empty_chunk"]

CHUNK_LENGTH = 75
COMMA_BACKTRACK = 20


@dataclass(frozen=True, slots=True)
class TokenChunk:
    """77 token ids (BOS, 75 tokens padded with EOS, EOS) and one emphasis weight per id."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]


def empty_chunk(bos: int, eos: int) -> TokenChunk:
    """The chunk of an empty prompt."""
    return TokenChunk((bos, *[eos] * (CHUNK_LENGTH + 1)), (1.0,) * (CHUNK_LENGTH + 2))


def chunk_prompt(
    text: str,
    tokenize: Callable[[Sequence[str]], list[list[int]]],
    *,
    bos: int,
    eos: int,
    comma: int | None,
) -> tuple[TokenChunk, ...]:
    """Chunks of ``text`` (extra-network tags already removed); an empty prompt gives one empty chunk."""
    parsed = parse_prompt_attention(text)
    tokenized = tokenize([chunk.text for chunk in parsed])
    chunks: list[TokenChunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal tokens, weights, last_comma
        pad = CHUNK_LENGTH - len(tokens)
        chunks.append(TokenChunk((bos, *tokens, *[eos] * pad, eos), (1.0, *weights, *[1.0] * pad, 1.0)))
        tokens, weights, last_comma = [], [], -1

    for ids, part in zip(tokenized, parsed, strict=True):
        if part.is_break:
            close()
            continue
        for token in ids:
            if token == comma:
                last_comma = len(tokens)
            elif (
                len(tokens) == CHUNK_LENGTH
                and last_comma != -1
                and len(tokens) - last_comma <= COMMA_BACKTRACK
            ):
                cut = last_comma + 1
                moved_tokens, moved_weights = tokens[cut:], weights[cut:]
                tokens, weights = tokens[:cut], weights[:cut]
                close()
                tokens, weights = moved_tokens, moved_weights
            if len(tokens) == CHUNK_LENGTH:
                close()
            tokens.append(token)
            weights.append(part.weight)
    if tokens or not chunks:
        close()
    return tuple(chunks)
