"""Prompt conditioning against tensors computed by hand from the text encoders (A1111 semantics)."""

from __future__ import annotations

import pytest
import torch

from ml_lib.diffusion.engine.conditioning import encode_sd, encode_sdxl, prompt_chunks
from ml_lib.diffusion.testing.tiny import tiny_sd1_components, tiny_sd2_components, tiny_sdxl_components

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sd1():
    pipe = tiny_sd1_components()
    # A trained final layer norm has a bias, so chunk means are far from 0 (the rescale is well defined).
    with torch.no_grad():
        pipe.text_encoder.final_layer_norm.bias.normal_(0.5, 0.1, generator=torch.Generator().manual_seed(0))
    return pipe


@pytest.fixture(scope="module")
def sdxl():
    return tiny_sdxl_components()


def hidden(
    pipe, ids: list[int], *, encoder=None, layer: int | None = None, norm: bool = False
) -> torch.Tensor:
    encoder = encoder or pipe.text_encoder
    with torch.inference_mode():
        out = encoder(torch.tensor([ids]), output_hidden_states=True)
        if layer is None:
            return out[0]
        z = out.hidden_states[layer]
        return encoder.final_layer_norm(z) if norm else z


def padded(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False).input_ids
    eos = tokenizer.eos_token_id
    return [tokenizer.bos_token_id, *ids, *[eos] * (76 - len(ids))]


def test_plain_prompt_equals_diffusers_encoding(sd1) -> None:
    ours = encode_sd(sd1, "a red circle", "blurry", batch=2, clip_skip=1, cfg=True, device=CPU)
    with torch.inference_mode():
        pe, ne = sd1.encode_prompt("a red circle", CPU, 2, True, negative_prompt="blurry")
    assert torch.equal(ours["prompt_embeds"], pe) and torch.equal(ours["negative_prompt_embeds"], ne)


def test_weights_scale_tokens_and_restore_the_mean(sd1) -> None:
    ids = padded(sd1.tokenizer, "a red circle")
    z = hidden(sd1, ids)
    weights = torch.ones(77)
    n_red = len(sd1.tokenizer("red", add_special_tokens=False).input_ids)
    weights[2 : 2 + n_red] = 1.5
    expected = z * weights.reshape(1, -1, 1)
    expected = expected * (z.mean() / expected.mean())
    ours = encode_sd(sd1, "a (red:1.5) circle", "", batch=1, clip_skip=1, cfg=False, device=CPU)[
        "prompt_embeds"
    ]
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_clip_skip_takes_an_earlier_layer_then_the_final_norm(sd1) -> None:
    ids = padded(sd1.tokenizer, "a red circle")
    ours = encode_sd(sd1, "a red circle", "", batch=1, clip_skip=2, cfg=False, device=CPU)["prompt_embeds"]
    torch.testing.assert_close(ours, hidden(sd1, ids, layer=-2, norm=True), rtol=0, atol=0)


def test_long_prompt_and_break_make_chunks_and_negative_is_padded(sd1) -> None:
    words = " ".join(["red"] * 80)
    chunks = prompt_chunks(sd1.tokenizer, words)
    assert len(chunks) == 2
    out = encode_sd(sd1, words, "blurry", batch=1, clip_skip=1, cfg=True, device=CPU)
    assert out["prompt_embeds"].shape == out["negative_prompt_embeds"].shape == (1, 154, 32)
    second = hidden(sd1, list(chunks[1].tokens))
    torch.testing.assert_close(out["prompt_embeds"][:, 77:], second, rtol=0, atol=0)
    empty = hidden(sd1, [sd1.tokenizer.bos_token_id] + [sd1.tokenizer.eos_token_id] * 76)
    torch.testing.assert_close(out["negative_prompt_embeds"][:, 77:], empty, rtol=0, atol=0)
    broken = encode_sd(sd1, "a cat BREAK a dog", "", batch=1, clip_skip=1, cfg=False, device=CPU)[
        "prompt_embeds"
    ]
    assert broken.shape == (1, 154, 32)
    torch.testing.assert_close(broken[:, 77:], hidden(sd1, padded(sd1.tokenizer, "a dog")), rtol=0, atol=0)


def test_lora_tags_are_not_encoded(sd1) -> None:
    a = encode_sd(sd1, "a red circle <lora:style:0.8>", "", batch=1, clip_skip=1, cfg=False, device=CPU)
    b = encode_sd(sd1, "a red circle", "", batch=1, clip_skip=1, cfg=False, device=CPU)
    assert torch.equal(a["prompt_embeds"], b["prompt_embeds"])


def test_sd2_pads_after_the_first_eos() -> None:
    pipe = tiny_sd2_components()
    tok = pipe.tokenizer
    ids = tok("a red circle", add_special_tokens=False).input_ids
    manual = [tok.bos_token_id, *ids, tok.eos_token_id] + [tok.pad_token_id] * (75 - len(ids))
    ours = encode_sd(pipe, "a red circle", "", batch=1, clip_skip=1, cfg=False, device=CPU)["prompt_embeds"]
    torch.testing.assert_close(ours, hidden(pipe, manual), rtol=0, atol=0)


def test_sdxl_concatenates_encoders_and_pools_the_first_chunk(sdxl) -> None:
    long = " ".join(["red"] * 80)
    out = encode_sdxl(sdxl, long, "blurry", batch=1, clip_skip=1, cfg=True, device=CPU)
    projection = sdxl.text_encoder_2.config.projection_dim
    assert out["prompt_embeds"].shape == (1, 154, 96) and out["pooled_prompt_embeds"].shape == (1, projection)
    first = list(prompt_chunks(sdxl.tokenizer_2, long)[0].tokens)
    eos = sdxl.tokenizer_2.eos_token_id
    first = first[: first.index(eos) + 1] + [sdxl.tokenizer_2.pad_token_id] * (77 - first.index(eos) - 1)
    with torch.inference_mode():
        pooled = sdxl.text_encoder_2(torch.tensor([first])).text_embeds
    torch.testing.assert_close(out["pooled_prompt_embeds"], pooled, rtol=0, atol=0)
    short = encode_sdxl(sdxl, "a red circle", "blurry", batch=1, clip_skip=1, cfg=True, device=CPU)
    with torch.inference_mode():
        pe, _ne, pp, _npp = sdxl.encode_prompt("a red circle", device=CPU, negative_prompt="blurry")
    torch.testing.assert_close(short["prompt_embeds"], pe, rtol=0, atol=0)
    torch.testing.assert_close(short["pooled_prompt_embeds"], pp, rtol=0, atol=0)
