"""Content words: a product shot is a product picture whatever the object; medium words from tuning."""

from __future__ import annotations

from ml_lib.diffusion.prompt.analyzer import analyze_prompt


def test_furniture_on_a_white_background_is_a_product() -> None:
    assert analyze_prompt("a velvet sofa, side view, white background").content_type == "product"


def test_an_object_in_a_landscape_for_an_advert_is_a_product() -> None:
    assert (
        analyze_prompt("a bottle of sun lotion on the sand by the sea, commercial").content_type == "product"
    )


def test_a_person_on_a_white_background_stays_a_portrait() -> None:
    assert analyze_prompt("a woman in a red coat, white background").content_type == "portrait"


def test_a_negated_product_word_does_not_count() -> None:
    assert analyze_prompt("a sandy beach at dawn, no advertising").content_type == "landscape"


def test_medium_words_added_from_tuning_errors() -> None:
    assert analyze_prompt("concept painting of a ruined observatory on a moon").content_type == "concept_art"
    assert analyze_prompt("prop design of a brass telescope, callouts").content_type == "concept_art"
    assert analyze_prompt("a fisherman in oils, dark background").content_type == "painting"
    assert analyze_prompt("gradient mesh in teal and orange").content_type == "abstract"
