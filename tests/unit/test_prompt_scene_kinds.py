"""Scene and format words: a kind of creature is no scene, a moving animal needs room, comic forms."""

from __future__ import annotations

from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.aspect import wide_scene
from ml_lib.diffusion.prompt.lexicon import tokenize


def test_a_kind_of_animal_is_not_a_wide_scene() -> None:
    analysis = analyze_prompt("a highland pony in the rain")
    assert analysis.content_type == "animal"
    assert analysis.aspect.orientation == "square"  # not "highlands (a wide scene)"
    assert "highland" not in analysis.aspect.cue


def test_the_same_word_as_the_scene_still_widens_it() -> None:
    analysis = analyze_prompt("a pony grazing in the highlands, mist")
    assert analysis.aspect.orientation == "landscape"
    assert analysis.aspect.source == "scene"


def test_wide_scene_skips_the_given_words() -> None:
    tokens = tokenize("a valley at dawn")
    assert wide_scene(tokens, "a valley at dawn") >= 1.0
    assert wide_scene(tokens, "a valley at dawn", frozenset({1})) == 0.0


def test_an_animal_in_motion_is_framed_wide() -> None:
    analysis = analyze_prompt("a dog sprinting along a sandy track")
    assert analysis.content_type == "animal"
    assert analysis.aspect.orientation == "landscape"
    assert analysis.aspect.cue == "sprinting (an animal in motion)"


def test_a_resting_animal_or_a_running_person_keeps_its_frame() -> None:
    assert analyze_prompt("a dog asleep on a blanket").aspect.orientation == "square"
    assert analyze_prompt("a woman running in a park").aspect.orientation == "portrait"


def test_comic_forms_by_their_names() -> None:
    assert analyze_prompt("yonkoma manga about a sleepy office worker").content_type == "comic"
    assert analyze_prompt("manhua, a cultivator meditating on a cliff").content_type == "comic"
