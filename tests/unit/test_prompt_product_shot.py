"""A product shot is a product picture whatever the object: the photography words decide."""

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
