"""Round 12: a photo cannot look drawn. In a prompt that says photo, a drawn medium's words name things shown
unless the look is asked for; an aesthetic's tags alone do too, its name or trigger does not; photographic
styles are untouched."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.planning.loras import LoraIndex, choose_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.testing.records import lora_record

XL = Family.SDXL
INDEX = LoraIndex(
    (
        lora_record("pixel_xl", triggers=("pixel art",), civitai_tags=("style", "pixel art"),
                    tags=(("pixel art", 90), ("8bit", 60), ("sprite", 50))),
        lora_record("comic_xl", triggers=("comic style",), civitai_tags=("style", "comic"),
                    tags=(("halftone", 80), ("comic book", 90), ("bold outlines", 60))),
        lora_record("steampunk_xl", triggers=("steampunk",), civitai_tags=("style", "steampunk"),
                    tags=(("gears", 110), ("brass", 70), ("goggles", 60))),
        lora_record("grain_xl", triggers=("film grain",), civitai_tags=("photography", "film"),
                    tags=(("film grain", 90), ("35mm", 60), ("kodak", 40))),
    )
)  # fmt: skip


def _choice(prompt: str):  # type: ignore[no-untyped-def]
    return choose_loras(prompt, INDEX, XL, analyze_prompt(prompt))


def _names(prompt: str) -> list[str]:
    return [p.record.name for p in _choice(prompt).picks]


@pytest.mark.parametrize(
    ("prompt", "refused"),
    [
        ("kids crowding around pixel art on an arcade cabinet, photo", "pixel_xl"),
        ("a stand-up comic on stage at an open mic, photo", "comic_xl"),
        ("the brass gears of a church tower clock, photo", "steampunk_xl"),  # an aesthetic's tags alone
    ],
)
def test_in_a_photo_a_style_word_names_a_thing_shown(prompt: str, refused: str) -> None:
    choice = _choice(prompt)
    assert choice.picks == ()
    assert refused in choice.reason and "in a photo: a thing shown there" in choice.reason


@pytest.mark.parametrize(
    ("prompt", "picked"),
    [
        ("kids crowding around pixel art on an arcade cabinet", "pixel_xl"),  # no photo word: no rule
        ("a street market at dusk, photo, pixel art style", "pixel_xl"),  # the look asked for
        ("a street market at dusk, photo, but as pixel art", "pixel_xl"),
        ("a crowded subway car, comic style, photo", "comic_xl"),  # the trigger holds the look word
        ("a woman in steampunk goggles and a corset, photo", "steampunk_xl"),  # a photo can have it
        ("film grain photo of a diner at night, kodak", "grain_xl"),  # a photographic style
    ],
)
def test_a_look_asked_for_or_a_photographic_style_is_still_picked(prompt: str, picked: str) -> None:
    assert _names(prompt) == [picked]
