"""Round 9: aspect cue words that describe things in the picture, not its frame (prompt/aspect_words.py)."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.prompt.analyzer import analyze_prompt


@pytest.mark.parametrize(
    "prompt",
    [
        "a rooftop terrace with vertical planters and herbs, daylight",  # the planters are vertical
        "abstract pattern of thin vertical lines in teal and rust",
    ],
)
def test_a_direction_word_on_plural_things_is_no_frame(prompt: str) -> None:
    assert analyze_prompt(prompt).aspect.orientation not in ("portrait", "tall")


def test_a_direction_word_on_the_picture_stays_a_frame_request() -> None:
    assert analyze_prompt("a narrow waterfall in a gorge, vertical").aspect.orientation in (
        "portrait",
        "tall",
    )
    assert analyze_prompt("a misty pine forest, vertical shot").aspect.orientation in ("portrait", "tall")


def test_an_animal_running_a_business_is_not_in_motion() -> None:
    aspect = analyze_prompt("picture book illustration, an otter running a bakery").aspect
    assert aspect.orientation not in ("landscape", "wide")
    assert "motion" not in aspect.cue


def test_an_animal_running_across_a_field_still_needs_room() -> None:
    assert analyze_prompt("a hare running across a frosty field").aspect.orientation in ("landscape", "wide")
