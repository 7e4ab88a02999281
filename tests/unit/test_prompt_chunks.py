"""A1111 token chunking: 75 tokens per chunk, BREAK, comma backtrack, emphasis weights (fake tokenizer)."""

from __future__ import annotations

from ml_lib.diffusion.engine.prompt_chunks import CHUNK_LENGTH, chunk_prompt, empty_chunk

BOS, EOS, COMMA = 1000, 1001, 5


def tokenize(texts):
    """Every word is one token: its length (commas are token 5)."""
    out = []
    for text in texts:
        ids = []
        for word in text.replace(",", " , ").split():
            ids.append(COMMA if word == "," else 100 + len(word))
        out.append(ids)
    return out


def chunks(text: str):
    return chunk_prompt(text, tokenize, bos=BOS, eos=EOS, comma=COMMA)


def test_short_prompt_is_one_padded_chunk() -> None:
    (chunk,) = chunks("a cat")
    assert chunk.tokens == (BOS, 101, 103, *[EOS] * 73, EOS)
    assert chunk.weights == (1.0,) * 77


def test_empty_prompt_is_the_empty_chunk() -> None:
    assert chunks("") == (empty_chunk(BOS, EOS),)


def test_emphasis_weights_follow_tokens() -> None:
    (chunk,) = chunks("a (big:1.5) [cat]")
    assert chunk.tokens[1:4] == (101, 103, 103)
    assert chunk.weights[1:4] == (1.0, 1.5, 1 / 1.1)


def test_long_prompt_splits_every_75_tokens() -> None:
    first, second = chunks(" ".join(["word"] * 100))
    assert len(first.tokens) == len(second.tokens) == CHUNK_LENGTH + 2
    assert first.tokens.count(104) == 75 and second.tokens.count(104) == 25
    assert second.tokens[0] == BOS and second.tokens[26:] == (EOS,) * 51


def test_break_starts_a_new_chunk() -> None:
    first, second = chunks("a cat BREAK a dog")
    assert first.tokens[:4] == (BOS, 101, 103, EOS)
    assert second.tokens[:4] == (BOS, 101, 103, EOS)


def test_comma_backtrack_moves_the_tail_to_the_next_chunk() -> None:
    words = ["word"] * 70 + [","] + ["tail"] * 10
    first, second = chunks(" ".join(words))
    # the chunk ends right after the comma (71 tokens), the 4 'tail' tokens that fitted move on
    assert first.tokens[71] == COMMA and first.tokens[72:] == (EOS,) * 5
    assert second.tokens[1:11] == (104,) * 10


def test_comma_too_far_back_is_not_used() -> None:
    words = ["word"] * 30 + [","] + ["x"] * 60
    first, second = chunks(" ".join(words))
    assert first.tokens[1:76].count(101) == 44 and second.tokens[1:17] == (101,) * 16
