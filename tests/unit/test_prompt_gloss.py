"""English glosses of non-English prompt words (prompt/gloss.py) and what they change in the analysis."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.gloss import gloss_tokens
from ml_lib.diffusion.prompt.lexicon import tokenize


def _english(text: str, language: str) -> list[str]:
    glossed = gloss_tokens(tokenize(text), language)
    assert glossed is not None
    return [t.raw for t in glossed.tokens]


def test_english_and_unknown_languages_are_not_glossed() -> None:
    assert gloss_tokens(tokenize("a squirrel on a stump"), "en") is None
    assert gloss_tokens(tokenize("ein Eichhörnchen"), "xx") is None
    assert gloss_tokens(tokenize("nichts bekanntes hier"), "de") is None  # no known word: nothing to gloss


def test_known_words_become_english_and_the_rest_stays_foreign() -> None:
    glossed = gloss_tokens(tokenize("ein Fuchs im tiefen Schnee"), "de")
    assert glossed is not None
    assert [t.raw for t in glossed.tokens] == ["a", "fox", "in", "tiefen", "schnee"]
    assert glossed.foreign == frozenset({3, 4})  # the lexicon must not read what the table does not know
    assert glossed.pairs == (("fuchs", "fox"),)  # articles and prepositions are not named in the notes


def test_prepositions_make_the_glossed_phrase_read_as_english() -> None:
    # "tractor" heads its phrase because "op" reads as "on": the tractor is the subject, not the field
    assert _english("een oude tractor op een akker", "nl") == ["a", "oude", "tractor", "on", "a", "field"]
    assert analyze_prompt("een oude tractor op een akker bij zonsondergang").content_type == "vehicle"


def test_inflected_forms_meet_their_table_word() -> None:
    assert "river" in _english("мост через реку", "ru")  # река → реку
    assert "flowers" in _english("wazon z kwiatami", "pl")  # kwiaty → kwiatami
    assert "mountains" in _english("tra le montagne", "it")
    assert "cliffs" in _english("los acantilados", "es")


def test_phrases_and_compound_heads() -> None:
    assert _english("puesta de sol", "es") == ["sunset"]
    assert "house" in _english("ein Bauernhaus", "de")  # unknown compound, known head
    assert "skyscraper" in _english("ein Hochhaus", "de")  # the whole compound first


def test_cjk_runs_are_cut_into_known_words() -> None:
    assert _english("古い寺と桜", "ja") == ["temple", "cherry", "blossoms"]
    assert _english("小镇的咖啡馆", "zh") == ["town", "cafe"]


def test_a_single_character_ending_an_unknown_word_is_not_a_word() -> None:
    # "谷" (valley) closes the place name "渋谷": no valley in a Tokyo street prompt
    assert gloss_tokens(tokenize("渋谷"), "ja") is None


def test_korean_words_keep_their_particles_out() -> None:
    assert _english("시골길로 가는 고양이", "ko")[:1] == ["country"]
    assert "cat" in _english("고양이가", "ko")


@pytest.mark.parametrize(
    ("prompt", "content_type"),
    [
        ("ein Eichhörnchen mit einer Eichel", "animal"),
        ("une vieille cuisine avec une grande table", "interior"),
        ("абстрактный узор из линий", "abstract"),
        ("饺子和汤、木桌", "food"),
        ("een oude tractor", "vehicle"),
    ],
)
def test_glossed_prompts_get_the_content_of_their_english(prompt: str, content_type: str) -> None:
    analysis = analyze_prompt(prompt)
    assert analysis.content_type == content_type
    assert analysis.language != "en"  # the prompt's own language is still reported
    assert analysis.notes and analysis.notes[0].startswith("read in English: ")


def test_the_decision_names_the_glossed_words() -> None:
    analysis = analyze_prompt("ein Eichhörnchen mit einer Eichel")
    assert "eichhörnchen → squirrel" in analysis.notes[0]
    assert analysis.subjects and analysis.subjects[0].text == "squirrel"


def test_foreign_words_that_are_english_nouns_are_not_read_as_english() -> None:
    # "die" and "den" are German articles, and English nouns in the lexicon: only the gloss may count
    analysis = analyze_prompt("die Katze auf den Stufen")
    assert analysis.content_type == "animal"
    assert [s.text for s in analysis.subjects] == ["cat"]


def test_with_is_glossed_so_its_phrase_describes_the_thing_before_it() -> None:
    assert _english("gato con sombrero", "es") == ["cat", "with", "sombrero"]
    assert _english("eine Kirche mit Stühlen", "de") == ["a", "church", "with", "stühlen"]
