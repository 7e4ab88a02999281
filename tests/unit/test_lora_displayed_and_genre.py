"""Two more kinds of mention: a picture on display in a room or still life, and a genre word on books."""

from __future__ import annotations

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.planning.loras import LoraIndex, choose_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.testing.records import lora_record

XL = Family.SDXL
INDEX = LoraIndex(
    (
        lora_record("pixel_xl", triggers=("pixel art",), civitai_tags=("style", "pixel art"),
                    tags=(("pixel art", 90), ("8bit", 60), ("sprite", 50))),
        lora_record("gothic_xl", triggers=("gothic",), civitai_tags=("style", "dark"),
                    tags=(("dark", 60), ("cathedral", 50), ("candles", 40))),
    )
)  # fmt: skip


def _choice(prompt: str):  # type: ignore[no-untyped-def]
    return choose_loras(prompt, INDEX, XL, analyze_prompt(prompt))


def _names(prompt: str) -> list[str]:
    return [p.record.name for p in _choice(prompt).picks]


def test_a_print_on_display_in_a_still_life_photo_is_a_mention() -> None:
    choice = _choice("a pixel art print leaning on a shelf next to plants, still life photo")
    assert choice.picks == ()
    assert "pixel_xl" in choice.reason and "not a style" in choice.reason


def test_a_print_asked_for_as_the_image_is_still_the_style() -> None:
    assert _names("pixel art print of a sleeping fox, 8bit") == ["pixel_xl"]  # no room, no still life


def test_a_genre_word_on_books_is_a_mention() -> None:
    choice = _choice("a stack of gothic novels beside a teacup, still life photo")
    assert choice.picks == ()
    assert "gothic_xl" in choice.reason


def test_the_genre_as_the_look_still_picks_it() -> None:
    assert _names("gothic cathedral at night, candles, dark") == ["gothic_xl"]
