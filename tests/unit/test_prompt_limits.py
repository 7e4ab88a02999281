"""Degenerate prompt numbers are refused up front: deep nesting, absurd or infinite weights."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.errors import PromptError, RequestError
from ml_lib.diffusion.prompt.attention import parse_prompt_attention
from ml_lib.diffusion.prompt.limits import MAX_ATTENTION_WEIGHT, MAX_NESTING, MAX_NETWORK_WEIGHT
from ml_lib.diffusion.prompt.syntax import parse_prompt


def test_limits_are_what_the_docs_say() -> None:
    assert (MAX_NESTING, MAX_ATTENTION_WEIGHT, MAX_NETWORK_WEIGHT) == (32, 100.0, 10.0)
    assert issubclass(PromptError, RequestError)


def test_ten_thousand_nested_parentheses_are_refused() -> None:
    text = "(" * 10_000 + "cat" + ")" * 10_000
    with pytest.raises(PromptError, match=r"nests brackets 33 deep.*at most 32") as caught:
        parse_prompt(text)
    assert "\n" not in str(caught.value) and "(word:1.5)" in str(caught.value)
    with pytest.raises(PromptError):
        parse_prompt_attention(text)


@pytest.mark.parametrize("bracket", ["(", "["])
def test_nesting_up_to_the_limit_is_fine_and_one_more_is_not(bracket: str) -> None:
    close = ")" if bracket == "(" else "]"
    ok = bracket * MAX_NESTING + "cat" + close * MAX_NESTING
    [chunk] = parse_prompt_attention(ok)
    assert chunk.text == "cat"
    assert chunk.weight == pytest.approx(1.1 ** (MAX_NESTING if bracket == "(" else -MAX_NESTING))
    assert parse_prompt(ok).render() == ok
    with pytest.raises(PromptError, match="deep"):
        parse_prompt_attention(bracket + ok + close)


def test_unclosed_brackets_count_as_nesting() -> None:
    with pytest.raises(PromptError, match="deep"):
        parse_prompt("(" * 40 + "cat")


def test_escaped_brackets_are_text_not_nesting() -> None:
    text = "\\(" * 100 + "cat"
    assert parse_prompt_attention(text)[0].weight == 1.0
    assert parse_prompt(text).render() == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(cat:" + "9" * 400 + ")", "not a finite number"),
        ("(cat:1000)", "attention weight of 1000"),
        ("(cat:-101)", "attention weight of -101"),
        ("(((((cat:80)))))", "attention weight of 117"),
        ("(((cat:9):9):9)", "attention weight of 729"),
    ],
)
def test_absurd_or_infinite_attention_weights_are_refused(text: str, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        parse_prompt(text)


@pytest.mark.parametrize(
    "text", ["(cat:100)", "(cat:-1)", "(cat:0)", "[cat:dog:0.5]", "(cat:nan)", "(cat:1e308)"]
)
def test_sane_weights_and_text_that_is_not_a_weight_pass(text: str) -> None:
    assert parse_prompt(text).render() == text
    assert all(abs(c.weight) <= MAX_ATTENTION_WEIGHT for c in parse_prompt_attention(text))


@pytest.mark.parametrize(
    "tag", ["<lora:x:1e308>", "<lora:x:11>", "<lora:x:0.5:-20>", "<lora:x:te=1:unet=1e9>"]
)
def test_absurd_network_weights_are_refused(tag: str) -> None:
    with pytest.raises(PromptError, match=r"within -10 and 10"):
        parse_prompt(f"a cat {tag}")


@pytest.mark.parametrize("tag", ["<lora:x:1>", "<lora:x:-10>", "<lora:x:0.8:1.2>", "<lora:x:abc>"])
def test_sane_network_weights_pass(tag: str) -> None:
    assert parse_prompt(f"a cat {tag}").networks  # "abc" is reported by NetworkRef.problems, not here


@pytest.mark.parametrize("tag", ["<lora:x:nan>", "<lyco:x:inf>", "<lora:x:1:-inf>"])
def test_non_finite_network_weights_are_unreadable_problems(tag: str) -> None:
    doc = parse_prompt(f"a cat {tag}")
    ref = doc.networks[0]
    assert None in (ref.te_weight, ref.unet_weight) and doc.problems


def test_absurd_composable_part_weight_is_refused() -> None:
    with pytest.raises(PromptError, match="AND part"):
        parse_prompt("a cat :1000000 AND a dog")
    assert parse_prompt("a cat :0.7 AND a dog").subprompts[0].weight == 0.7
