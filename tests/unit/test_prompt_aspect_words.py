"""Aspect cue words: round 9's words that describe things in the picture, not its frame (prompt/aspect_words.py);
round 11's strips, views from below and game screens (vocab/aspect.json)."""

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


@pytest.mark.parametrize(
    ("prompt", "frame"),
    [
        ("newspaper comic strip, a retired superhero and a flat-pack wardrobe", "landscape"),
        ("three-panel strip, a kettle that refuses to boil", "landscape"),
        ("a water tower painted cream and green, seen from below", "portrait"),
        ("pixel art title screen, a castle and a dragon", "landscape"),
    ],
)
def test_strips_views_from_below_and_game_screens_have_their_frames(prompt: str, frame: str) -> None:
    aspect = analyze_prompt(prompt).aspect
    assert (aspect.orientation, aspect.source) == (frame, "cue")
