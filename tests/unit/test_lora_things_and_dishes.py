"""Round 7's mentions: things on a surface make an object scene, a style word printed on or shaping a thing
in a scene of things is no style request, and a concept word before a food word names the dish."""

from __future__ import annotations

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.planning.lora_judge import read_prompt
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
        lora_record("porcelain_xl", triggers=("porcelain style",), civitai_tags=("style", "material"),
                    tags=(("porcelain", 100), ("ceramic", 90), ("glaze", 70))),
        lora_record("wyrm_xl", triggers=("dragon",), civitai_tags=("creature", "fantasy"),
                    tags=(("scales", 80), ("wings", 60), ("fire", 40))),
    )
)  # fmt: skip


def _choice(prompt: str):  # type: ignore[no-untyped-def]
    return choose_loras(prompt, INDEX, XL, analyze_prompt(prompt))


def _names(prompt: str) -> list[str]:
    return [p.record.name for p in _choice(prompt).picks]


def test_things_on_a_surface_make_an_object_scene() -> None:
    assert read_prompt("old jam jars on a pantry shelf, morning light", None).object_scene
    assert read_prompt("a teapot on the kitchen table", None).thing_scene
    assert not read_prompt("a cat sleeping on the sofa", None).thing_scene  # a sofa is no surface of things
    assert not read_prompt("a lamp on, a table", None).thing_scene  # the comma ends the phrase


def test_material_of_things_on_a_surface_is_a_mention() -> None:
    choice = _choice("porcelain cups on a cafe counter, glaze cracks")
    assert choice.picks == ()
    assert "porcelain_xl" in choice.reason and "not a style" in choice.reason


def test_a_style_printed_on_a_thing_in_a_product_shot_is_a_mention() -> None:
    choice = _choice("a board game with pixel art on the lid, product photo")
    assert choice.picks == ()
    assert "pixel_xl" in choice.reason


def test_a_style_word_shaping_a_thing_on_a_shelf_is_a_mention() -> None:
    assert _names("candles with gothic lettering on a gift shop shelf") == []


def test_the_style_asked_for_in_a_product_shot_is_still_picked() -> None:
    assert _names("pixel art style, a sneaker, product photo") == ["pixel_xl"]
    assert _names("gothic style perfume bottle, product photo, candles") == ["gothic_xl"]


def test_a_style_in_a_room_is_still_the_look() -> None:
    assert _names("gothic bedroom with candles, dark") == ["gothic_xl"]  # a room is no scene of things


def test_a_concept_word_before_a_food_word_names_the_dish() -> None:
    choice = _choice("a dragon maki sushi tray with wasabi")
    assert choice.picks == ()
    assert "wyrm_xl" in choice.reason and "names another thing" in choice.reason


def test_the_creature_itself_is_still_the_concept() -> None:
    assert _names("a dragon breathing fire over a castle, wings") == ["wyrm_xl"]
    assert _names("a dragon eating sushi at a counter") == ["wyrm_xl"]  # a verb: the dragon is there
