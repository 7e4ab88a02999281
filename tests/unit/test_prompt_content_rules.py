"""Content type and frame from what the prompt shows: a subject's kind, open scenery with nothing in it,
possessives, and media that keep their own frame."""

from __future__ import annotations

from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import stem


def test_a_subjects_kind_gives_its_content_type_when_nothing_else_does() -> None:
    assert analyze_prompt("macro shot of a ladybug, morning dew").content_type == "animal"
    assert analyze_prompt("a ripe apple with water droplets, macro").content_type == "food"
    # a subject's kind is weak evidence: the field the crows sit in is still the picture
    assert analyze_prompt("a wheat field with crows at dusk").content_type == "landscape"


def test_open_scenery_with_nothing_in_it_is_a_landscape() -> None:
    assert analyze_prompt("endless prairie at dusk, storm clouds rolling in").content_type == "landscape"
    # scenery words do not override a subject type the prompt names
    assert analyze_prompt("tokyo skyline seen across the bay at night").content_type == "architecture"


def test_a_possessive_names_its_owner_but_the_owner_is_not_a_subject() -> None:
    assert stem("owl's") == "owl" and stem("fox\u2019s") == "fox"
    assert analyze_prompt("close-up of a fox's face, whiskers, amber eyes").content_type == "animal"
    # with a person in it, the face is the person's
    assert analyze_prompt("close-up of a woman's face next to her fox, amber eyes").content_type == "portrait"
    book = analyze_prompt("children's book illustration of a bear on a swing")
    assert book.content_type == "illustration"
    assert "child" not in {s.label for s in book.subjects}
    assert analyze_prompt("bird's eye view of a city at night").content_type == "architecture"


def test_an_illustration_or_3d_render_keeps_its_own_square_frame_unless_the_scene_says() -> None:
    # (a lone person is another matter: "an old lighthouse keeper reading" is a person since the WordNet
    # lexicon reads "lighthouse keeper" whole, and a lone person takes a portrait frame as "an old man" does)
    assert (
        analyze_prompt("digital illustration of an old lighthouse by the sea").aspect.orientation == "square"
    )
    assert analyze_prompt("3d render of a little cabin in the woods, octane").aspect.orientation == "square"
    # the scene still decides when it speaks: a whole standing figure, open scenery
    standing = analyze_prompt("storybook illustration of a knight standing, full body")
    assert standing.aspect.orientation == "portrait"
    wide = analyze_prompt("illustration of a vast valley at dawn, endless hills, a winding river")
    assert wide.aspect.orientation in ("landscape", "wide")


def test_a_medium_word_on_a_tool_names_the_tool_not_the_medium() -> None:
    tools = analyze_prompt("a tin of watercolor brushes and charcoal sticks on a desk, product photo")
    assert tools.content_type == "product"
    assert (
        analyze_prompt("charcoal sticks and a sketch pad on a table, still life").content_type
        != "illustration"
    )
    # the same words as the picture's medium still are
    assert analyze_prompt("watercolor of a harbor, loose brush strokes").content_type == "painting"
    assert analyze_prompt("charcoal sketch of a dancer").content_type == "illustration"
