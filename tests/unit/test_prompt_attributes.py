"""What a thing is comes from the words before its "with"; the words after it describe it."""

from __future__ import annotations

from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import tokenize
from ml_lib.diffusion.prompt.word_roles import attribute_words


def test_attribute_words_run_from_with_to_the_clause_end() -> None:
    tokens = tokenize("a tea room with velvet armchairs, warm light")
    assert [tokens[i].raw for i in sorted(attribute_words(tokens))] == ["velvet", "armchairs"]


def test_a_leading_with_has_nothing_to_describe() -> None:
    assert attribute_words(tokenize("with a red umbrella, rain")) == set()


def test_a_building_furnished_with_products_is_the_building() -> None:
    # the chairs alone would make a product picture; the chapel and the bistro are what is shown
    assert analyze_prompt("a chapel with wooden chairs in rows").content_type == "architecture"
    assert analyze_prompt("a bistro with chairs on the terrace").content_type == "architecture"


def test_a_companion_after_with_is_still_in_the_picture() -> None:
    analysis = analyze_prompt("a fisherman with his dog on a wooden pier")
    assert {s.label for s in analysis.subjects} >= {"dog"}


def test_the_words_after_with_decide_when_nothing_before_does() -> None:
    # nothing the rules know comes before "with": the chairs are all there is to go on
    assert analyze_prompt("a sunlit place with wicker chairs and armchairs").content_type != "photo"
