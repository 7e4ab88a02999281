"""The WordNet lexicon (vocab/wordnet_kinds.json) and its use as the analyzer's fallback."""

from __future__ import annotations

import pytest

import ml_lib.diffusion.prompt.lexicon_fallback as fallback
from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.errors import ConfigError
from ml_lib.diffusion.planning.loras import LoraIndex, choose_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import tokenize
from ml_lib.diffusion.prompt.noun_kinds import NounLexicon, lexicon_phrases, noun_lexicon
from ml_lib.diffusion.testing.records import lora_record


def kind(word: str) -> str | None:
    return noun_lexicon().word_kind(tokenize(word)[0])


def test_dishes_are_food_rooms_and_furniture_interior() -> None:
    for dish in ("tiramisu", "goulash", "lasagna", "baklava", "omelette", "lemonade"):
        assert kind(dish) == "food", dish
    for room in ("pantry", "attic", "foyer", "nursery", "ballroom", "credenza", "armoire", "wardrobe"):
        assert kind(room) == "interior", room
    assert kind("capybara") == "wild animal" and kind("heron") == "bird" and kind("rickshaw") == "vehicle"
    assert kind("ziggurat") == "architecture" and kind("butte") == "landscape"
    assert kind("tomatoes") == "food" and kind("geese") == "bird"  # plural forms


def test_ambiguous_general_and_adjective_words_have_no_kind() -> None:
    assert kind("smoothie") is None  # a drink and a smooth talker: the senses disagree
    assert kind("schooner") is None  # a sailing ship and a tall glass, neither more usual
    assert kind("white") is None  # more an adjective than a noun
    assert kind("creature") is None and kind("beast") is None  # a root synset's own words
    assert kind("table") is None  # a table of data is its usual sense
    assert kind("dinner") is None  # a meal: an occasion, not a dish


def test_multiword_nouns_are_read_whole() -> None:
    tokens = tokenize("a hot dog and a teddy bear on a zebra crossing")
    found = {p.term: p.kind for p in lexicon_phrases(tokens)}
    assert found == {"hot dog": "food", "teddy bear": None, "zebra crossing": None}


def test_a_dish_the_vocabularies_do_not_know_is_food_only_thanks_to_the_lexicon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prompt = "goulash in a cast iron pot, rustic wooden table"
    assert analyze_prompt(prompt).content_type == "food"
    assert analyze_prompt("a mahogany wardrobe and a four-poster bed").content_type == "interior"
    empty = NounLexicon({"words": {}, "phrases": {}, "plurals": {}})
    monkeypatch.setattr(fallback, "lexicon_phrases", lambda tokens: [])
    monkeypatch.setattr("ml_lib.diffusion.prompt.noun_kinds.noun_lexicon", lambda: empty)
    assert analyze_prompt(prompt).content_type == "photo"


def test_the_curated_vocabulary_wins_over_the_lexicon() -> None:
    assert kind("chicken") == "food"  # WordNet's chicken is mostly the meat
    analysis = analyze_prompt("a chicken in a farmyard")
    assert [s.label for s in analysis.subjects] == ["farm animal"]  # subjects.json says farm animal
    assert analysis.content_type == "animal"


def test_a_longer_lexicon_noun_shadows_a_curated_word_of_another_kind() -> None:
    hot_dog = analyze_prompt("a hot dog with mustard and onions")
    assert hot_dog.content_type == "food" and hot_dog.subjects == ()  # no dog
    assert analyze_prompt("a teddy bear on a windowsill, soft light").subjects == ()
    girl = analyze_prompt("a little girl flying a kite")  # same kind: the curated word stays
    assert [s.label for s in girl.subjects] == ["woman"]


def test_dragon_fruit_is_not_a_dragon() -> None:
    analysis = analyze_prompt("a dragon fruit cut in half on a marble counter")
    assert analysis.content_type == "food"
    assert "dragon" not in {s.label for s in analysis.subjects}


def test_a_lexicon_is_english_only() -> None:
    assert analyze_prompt("paysage de campagne en été, champs de blé, ciel bleu").content_type == "landscape"


DRAGON = lora_record("dragon_xl", triggers=("dragon",), civitai_tags=("creature", "fantasy"),
                     tags=(("dragon", 100), ("scales", 80), ("wings", 60)))  # fmt: skip
DOG = lora_record(
    "dog_xl", triggers=("dog",), civitai_tags=("animal", "dog"), tags=(("dog", 100), ("puppy", 50))
)
DRAGON_GIRL = lora_record("dragongirl_xl", triggers=("dragon girl",), civitai_tags=("character",),
                          tags=(("dragon girl", 100), ("dragon horns", 80), ("girl", 60)))  # fmt: skip


def picks(prompt: str, *records: object) -> list[str]:
    index = LoraIndex(records)  # type: ignore[arg-type]
    choice = choose_loras(prompt, index, Family.SDXL, analyze_prompt(prompt), limit=3)
    return [p.record.name for p in choice.picks]


def test_a_compound_naming_another_thing_does_not_pull_a_concept_lora() -> None:
    assert picks("a dragon fruit smoothie on a cafe table", DRAGON) == []
    assert picks("a hot dog with mustard", DOG) == []
    assert picks("a red dragon breathing fire over a village", DRAGON) == ["dragon_xl"]
    assert picks("a golden retriever dog on the beach", DOG) == ["dog_xl"]
    assert picks("dragon girl reading a book, dragon horns", DRAGON_GIRL) == ["dragongirl_xl"]


def test_a_damaged_lexicon_file_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"build_lexicon\.py"):
        NounLexicon({"words": [], "phrases": {}, "plurals": {}})
