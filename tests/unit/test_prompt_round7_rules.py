"""Round 7's analyzer rules: close-ups are frames, possessors head their phrase, "painted" on a thing, the
camera's place, details and purposes are no medium, people with food, and a few frame cues."""

from __future__ import annotations

from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import tokenize
from ml_lib.diffusion.prompt.word_roles import purpose_words, viewpoint_words


def _words(indices: set[int], prompt: str) -> list[str]:
    tokens = tokenize(prompt, 1.0)
    return [tokens[i].raw for i in sorted(indices)]


def test_close_up_alone_is_no_portrait_evidence() -> None:
    analysis = analyze_prompt("close-up of a sliced blood orange on slate")
    assert analysis.content_type != "portrait"
    assert analysis.aspect.orientation == "square"  # still a close-up frame
    assert analyze_prompt("close-up of a woman laughing, soft light").content_type == "portrait"


def test_a_possessor_heads_its_own_phrase() -> None:
    assert analyze_prompt("an aardvark's long ears at dusk").content_type == "animal"  # WordNet's aardvark
    assert analyze_prompt("close-up of a tapir's snout, macro").content_type == "animal"


def test_painted_before_a_thing_describes_the_thing() -> None:
    assert analyze_prompt("a mime with a painted face on a street corner").content_type != "painting"
    assert analyze_prompt("a painted portrait of a duchess").content_type == "painting"
    assert analyze_prompt("harbour at dusk, painted in oils").content_type == "painting"


def test_the_camera_place_is_not_in_the_picture() -> None:
    assert _words(viewpoint_words(tokenize("a glacier seen from a helicopter window, blue ice", 1.0)),
                  "a glacier seen from a helicopter window, blue ice") == ["a", "helicopter", "window"]  # fmt: skip
    assert analyze_prompt("a glacier seen from a helicopter, blue ice").content_type == "landscape"
    assert analyze_prompt("a red helicopter over a glacier").content_type == "vehicle"


def test_a_setting_at_the_camera_place_still_counts() -> None:
    view = viewpoint_words(tokenize("the view from a ridge over a lake", 1.0))
    assert _words(view, "the view from a ridge over a lake") == ["a", "ridge"]  # "over" ends it


def test_a_medium_word_after_with_is_a_detail_on_the_thing() -> None:
    analysis = analyze_prompt("macro shot of a tie clip with an engraved monogram")
    assert analysis.content_type not in ("logo", "portrait")


def test_a_purpose_phrase_is_no_medium() -> None:
    prompt = "a smiling man for a conference badge, plain background"
    assert _words(purpose_words(tokenize(prompt, 1.0)), prompt) == ["conference", "badge"]
    assert analyze_prompt("a smiling man for a conference badge").content_type == "portrait"
    assert analyze_prompt("badge logo for a chess club, a rook").content_type == "logo"


def test_people_with_food_are_a_photo_of_them() -> None:
    assert analyze_prompt("two cooks tasting soup in a busy kitchen, candid photo").content_type == "photo"
    assert analyze_prompt("a bowl of soup with croutons").content_type == "food"


def test_screenshots_are_wide_and_sprite_sizes_square() -> None:
    assert analyze_prompt("anime screenshot, two students on a rooftop").aspect.orientation in (
        "landscape",
        "wide",
    )
    sprite = analyze_prompt("pixel art portrait of a knight, 48x48").aspect
    assert (sprite.orientation, sprite.source, sprite.cue) == ("square", "ratio", "48x48")


def test_a_frame_word_alone_between_commas_is_an_instruction() -> None:
    assert analyze_prompt("a poster of a lighthouse, square").aspect.orientation == "square"
    assert analyze_prompt("a poster of a lighthouse by a town square").aspect.orientation == "portrait"


def test_men_plurals_stem_to_man() -> None:
    from ml_lib.diffusion.prompt.lexicon import stem

    assert [stem(w) for w in ("firemen", "horsewomen", "specimen", "women", "dolmens")] == [
        "fireman", "horsewoman", "specimen", "woman", "dolmen",
    ]  # fmt: skip
    subjects = analyze_prompt("businessmen waiting at a crosswalk in the rain").subjects
    assert [(s.label, s.count) for s in subjects] == [("person", 2)]


def test_things_listed_after_open_scenery_are_in_the_scene() -> None:
    assert analyze_prompt("rolling hills at dusk, sheep, fog").content_type == "landscape"
    assert analyze_prompt("a quiet bay at dawn, gulls, grey sky").content_type == "landscape"
    assert analyze_prompt("a flock of sheep on rolling hills at dusk, fog").content_type == "animal"
