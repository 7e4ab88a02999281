"""Round 9: a LoRA's word used in another sense is refused, with the reason (planning/lora_senses.py); the
same words used for the LoRA's look or concept still pick it."""

from __future__ import annotations

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.planning.loras import LoraIndex, choose_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.testing.records import lora_record

XL = Family.SDXL
INDEX = LoraIndex(
    (
        lora_record("comic_xl", triggers=("comic",), civitai_tags=("style", "comic"),
                    tags=(("comic book", 90), ("halftone", 60), ("speech bubble", 40))),
        lora_record("noir_xl", triggers=("noir",), civitai_tags=("style",), tags=(("film noir", 80),)),
        lora_record("sticker_xl", triggers=("sticker",), civitai_tags=("style", "design"),
                    tags=(("die cut", 80), ("white outline", 60))),
        lora_record("origami_xl", triggers=("origami",), civitai_tags=("style", "craft"),
                    tags=(("folded paper", 90), ("paper crane", 50))),
        lora_record("isometric_xl", triggers=("isometric",), civitai_tags=("style",),
                    tags=(("diorama", 80), ("game asset", 60))),
        lora_record("bokeh_xl", triggers=("bokeh",), civitai_tags=("style", "photography"),
                    tags=(("bokeh", 90), ("photo", 60), ("lights", 40))),
        lora_record("tiger_xl", triggers=("tiger",), civitai_tags=("concept", "animal"),
                    tags=(("stripes", 80), ("big cat", 60))),
        lora_record("space_xl", triggers=("space",), civitai_tags=("concept",),
                    tags=(("stars", 80), ("nebula", 60))),
        lora_record("foxears_xl", triggers=("fox ears",), civitai_tags=("concept", "clothing"),
                    tags=(("animal ears", 80), ("headband", 40))),
        lora_record("ayanami_xl", triggers=("ayanami rei",), civitai_tags=("character",),
                    tags=(("blue hair", 80), ("plugsuit", 70))),
    )
)  # fmt: skip


def _choice(prompt: str):  # type: ignore[no-untyped-def]
    return choose_loras(prompt, INDEX, XL, analyze_prompt(prompt))


def _names(prompt: str) -> list[str]:
    return [p.record.name for p in _choice(prompt).picks]


def _refused(prompt: str, name: str, why: str) -> None:
    choice = _choice(prompt)
    assert name not in [p.record.name for p in choice.picks]
    assert f"{name}: " in choice.reason and why in choice.reason


def test_a_style_word_after_any_modifier_stays_the_style() -> None:
    # "a skull tattoo", "a rose sticker": how people ask for the style, whatever the lexicon knows of the word
    assert _names("a deadpan comic about a detective") == ["comic_xl"]
    assert _names("a noir comic about a detective in the rain") == ["comic_xl", "noir_xl"]  # two styles
    assert _names("a koi sticker, die cut, white outline") == ["sticker_xl"]
    assert _names("a skull sticker on a laptop") == ["sticker_xl"]


def test_a_style_word_on_the_picture_noun_of_a_photo_is_the_style() -> None:
    assert _names("isometric snapshot of a rowing club, photo") == ["isometric_xl"]
    assert _names("noir photo of a detective in the rain") == ["noir_xl"]


def test_a_style_word_acted_on_in_a_photo_is_a_thing() -> None:
    _refused("a child peeling stickers off a fridge door, photo", "sticker_xl", "acted on in a photo")
    assert _names("a sticker of a sleepy fox, die cut, white outline") == ["sticker_xl"]


def test_a_style_word_describing_a_thing_in_a_photo_is_no_style() -> None:
    _refused(
        "isometric drills at a rowing club, sports photo", "isometric_xl", "'isometric drill' in a photo"
    )
    assert _names("isometric diorama of a rowing club, game asset") == ["isometric_xl"]
    assert _names("city lights with heavy bokeh, night photo") == ["bokeh_xl"]  # a photographic style


def test_things_a_collection_holds_are_no_style() -> None:
    _refused("boxes of sticker sheets in a warehouse", "sticker_xl", "things a collection holds")


def test_a_concept_word_naming_a_kind_of_vehicle_is_another_thing() -> None:
    _refused("a tiger tank in a museum hall", "tiger_xl", "'tiger tank': the word says which kind")
    assert _names("a tiger prowling in tall grass, stripes") == ["tiger_xl"]


def test_a_concept_word_on_the_product_shown_is_no_concept() -> None:
    _refused("a space heater on a white background, product photo", "space_xl", "describes the thing shown")


def test_a_possessive_spelling_names_a_part_of_the_thing_shown() -> None:
    _refused("a fox's ears in the tall grass, photo", "foxears_xl", "a part of a fox shown there")
    assert _names("a girl with fox ears and a headband") == ["foxears_xl"]


def test_a_character_name_on_a_place_names_the_place() -> None:
    _refused("morning at the ayanami bakery, fresh bread", "ayanami_xl", "'ayanami bakery': a place or thing")
    assert _names("ayanami rei in a plugsuit, blue hair") == ["ayanami_xl"]
