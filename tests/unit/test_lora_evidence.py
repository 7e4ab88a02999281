"""Which prompt words count as a LoRA's evidence: a trigger split by a word or two, a name word used on
another noun, British spelling."""

from __future__ import annotations

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.planning.loras import LoraIndex, choose_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import stem
from ml_lib.diffusion.testing.records import lora_record

LIBRARY = (
    lora_record("food-sdxl-lora", triggers=("food photo",), civitai_tags=("food", "photography"),
                tags=(("dish", 100), ("plate", 80), ("restaurant", 60), ("delicious", 40)),
                description="Appetising food photography"),
    lora_record("PixelXL", triggers=("pixel art",), civitai_tags=("style", "pixel art"),
                tags=(("pixel art", 64), ("8bit", 67), ("sprite", 25), ("retro game", 102))),
    lora_record("cyberpunk-sdxl-lora", triggers=("cyberpunk",), civitai_tags=("style", "sci-fi"),
                tags=(("neon lights", 90), ("city", 80), ("futuristic", 70), ("rain", 50))),
    lora_record("armor-sdxl-lora", triggers=("fantasy armor",), civitai_tags=("clothing", "fantasy"),
                tags=(("knight", 100), ("plate armor", 90), ("ornate armor", 80), ("helmet", 60)),
                description="Ornate fantasy armor"),
    lora_record("samuraiarmor-sdxl-lora", triggers=("samurai armor",), civitai_tags=("clothing", "armor"),
                tags=(("samurai", 110), ("japanese armor", 95), ("kabuto", 60), ("katana", 40)),
                description="Samurai armour (o-yoroi) and helmets. Not western plate armour."),
    lora_record("dragongirl_xl_v2", triggers=("dragon girl",), civitai_tags=("character", "fantasy"),
                tags=(("dragon horns", 100), ("dragon tail", 90), ("scales", 50))),
    lora_record("DragonXL", triggers=("dragon",), civitai_tags=("creature", "fantasy"),
                tags=(("scales", 100), ("wings", 90), ("fantasy creature", 80), ("fire", 50))),
    lora_record("WatercolorXL", triggers=("wtrclr",), civitai_tags=("style", "watercolor"),
                tags=(("watercolor", 100), ("painting", 60), ("soft colors", 50))),
)  # fmt: skip
INDEX = LoraIndex(LIBRARY)


def names(prompt: str) -> list[str]:
    choice = choose_loras(prompt, INDEX, Family.SDXL, analyze_prompt(prompt), limit=3)
    return sorted(p.record.name for p in choice.picks)


def test_a_name_word_on_another_noun_is_not_the_loras_concept() -> None:
    # "food" names the stall, not a food photo: the food LoRA's name word is no evidence here
    assert names("pixel art of a neon cyberpunk street food stall at night") == [
        "PixelXL",
        "cyberpunk-sdxl-lora",
    ]
    # the same word as the head of its phrase, or with the LoRA's own words, still counts
    assert names("delicious street food on a plate, restaurant") == ["food-sdxl-lora"]
    assert names("food photo of a street food stall") == ["food-sdxl-lora"]


def test_a_trigger_split_by_a_word_or_two_beats_a_siblings_name_word() -> None:
    # "samurai ... armor" is the samurai-armour trigger; "armor" alone is the fantasy LoRA's name word,
    # already used by the first pick, so the sibling does not follow on it
    assert names("samurai in lacquered armor holding a katana, misty bamboo forest") == [
        "samuraiarmor-sdxl-lora"
    ]
    assert names("a knight in ornate plate armor, helmet") == ["armor-sdxl-lora"]
    assert names("a dragon horned girl, scales") == ["dragongirl_xl_v2"]
    # not across "and": two subjects side by side do not make the trigger
    assert names("a dragon and a girl in a meadow") == ["DragonXL"]  # a dragon, not a dragon girl


def test_british_spelling_matches_us_vocabulary() -> None:
    assert stem("watercolours") == stem("watercolor") == "watercolor"
    assert stem("armour") == "armor" and stem("harbour") == "harbor"
    assert stem("flour") == "flour" and stem("four") == "four" and stem("tours") == "tour"
    assert names("loose watercolour of a heron standing in reeds") == ["WatercolorXL"]


def test_words_inside_another_loras_longer_trigger_are_not_evidence() -> None:
    # "dragon girl" names more than "dragon"; "samurai armor" more than the fantasy LoRA's "armor"
    assert names("dragon girl with horns, scales, fantasy") == ["dragongirl_xl_v2"]
    assert names("a red dragon with wings over a castle") == ["DragonXL"]
    assert names("fantasy armor knight duelling a samurai in samurai armor with a katana") == [
        "armor-sdxl-lora",
        "samuraiarmor-sdxl-lora",
    ]
