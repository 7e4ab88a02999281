"""Hostile prompt text (from a user, or from an image's plan that ``reproduce`` checks) parses in linear time."""

from __future__ import annotations

import time

import pytest

from ml_lib.diffusion.errors import PromptError
from ml_lib.diffusion.prompt.attention import parse_prompt_attention
from ml_lib.diffusion.prompt.grammar import parse_nodes
from ml_lib.diffusion.prompt.nodes import Text
from ml_lib.diffusion.prompt.syntax import parse_prompt


def _seconds(text: str) -> float:
    start = time.perf_counter()
    parse_prompt(text)
    return time.perf_counter() - start


@pytest.mark.parametrize("unit", ["(", "[(", "(a:", "[a:", "[a|"])
def test_deep_nesting_is_refused_in_linear_time(unit: str) -> None:
    text = unit * 200_000 + "cat"
    start = time.perf_counter()
    with pytest.raises(PromptError, match="nests brackets 33 deep"):
        parse_prompt(text)
    assert time.perf_counter() - start < 2.0  # was ~100 grammar steps per bracket: over a minute


def test_nesting_over_the_grammar_depth_is_one_plain_text() -> None:
    text = "(" * 101 + "cat" + ")" * 101
    assert parse_nodes(text) == (Text(text),)
    assert parse_nodes("(" * 100 + "cat" + ")" * 100) != (Text("(" * 100 + "cat" + ")" * 100),)


def test_a_long_run_of_equal_weights_is_joined_in_linear_time() -> None:
    small = min(_seconds("\\(" * 25_000) for _ in range(3))  # one chunk of escaped brackets
    large = min(_seconds("\\(" * 400_000) for _ in range(2))
    # 16x the text: linear is ~16x the time, quadratic ~256x; 4x slack keeps a busy machine from failing it.
    assert large < 4 * 16 * small + 1.0, f"{small:.3f} s, then {large:.3f} s for 16x the text"


def test_equal_weights_still_merge_into_one_chunk() -> None:
    chunks = parse_prompt_attention("\\(" * 5 + "a (b) (c) [d]")
    assert [(c.text, round(c.weight, 4)) for c in chunks] == [
        ("(((((a ", 1.0),
        ("b", 1.1),
        (" ", 1.0),
        ("c", 1.1),
        (" ", 1.0),
        ("d", round(1 / 1.1, 4)),
    ]
