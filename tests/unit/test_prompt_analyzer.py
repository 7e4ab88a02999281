"""Rule-based prompt analysis: content type, aspect, subjects, cues, negation, NSFW, language, speed."""

from __future__ import annotations

import statistics
import time

import pytest

from ml_lib.diffusion.prompt.analyzer import analyze_prompt, decide_content_type
from ml_lib.diffusion.prompt.syntax import parse_prompt


@pytest.mark.parametrize(
    ("prompt", "content_type"),
    [
        ("portrait of an old fisherman, 85mm, natural light", "portrait"),
        ("snow-capped mountains above a calm lake", "landscape"),
        ("a gothic cathedral facade", "architecture"),
        ("scandinavian living room interior", "interior"),
        ("product photography of a perfume bottle", "product"),
        ("a bowl of ramen, food photography", "food"),
        ("a red fox in the snow", "animal"),
        ("a red sports car on a mountain road", "vehicle"),
        ("masterpiece, 1girl, solo, school uniform", "anime"),
        ("flat vector illustration of a woman with a laptop", "illustration"),
        ("comic book page with speech bubbles", "comic"),
        ("3d render of a cute robot, octane render", "3d_render"),
        ("a mountain lake, oil painting", "painting"),  # a named medium wins over the subject
        ("concept art of a floating city", "concept_art"),
        ("pixel art knight, 16-bit", "pixel_art"),
        ("minimalist logo of a fox, abstract geometric shapes", "logo"),  # a logo is a logo
        ("abstract art, swirling colors", "abstract"),
        ("a busy intersection at night", "photo"),
        ("", "photo"),
    ],
)
def test_content_type(prompt: str, content_type: str) -> None:
    assert analyze_prompt(prompt).content_type == content_type


def test_content_scores_and_confidence() -> None:
    analysis = analyze_prompt("oil painting of a lighthouse")
    assert analysis.content_scores[0].label == "painting"
    assert 0.5 < analysis.content_confidence <= 0.97
    assert analysis.score("architecture") > 0
    assert analyze_prompt("zzz qqq").content_confidence == 0.25


def test_emphasis_and_negation_change_the_evidence() -> None:
    assert analyze_prompt("(cat:1.8), [[[[mountain]]]]").content_type == "animal"
    no_cars = analyze_prompt("a street with no cars, photo")
    assert no_cars.content_type != "vehicle"
    assert any(cue.label == "cars" for cue in no_cars.negative)


def test_focal_subject_beats_setting_and_dominant_logo() -> None:
    assert analyze_prompt("a herd of elephants crossing a river in the savanna").content_type == "animal"
    decision = decide_content_type({"logo": 2.0, "abstract": 6.0})
    assert decision.content_type == "logo"


@pytest.mark.parametrize(
    ("prompt", "orientation", "source"),
    [
        ("a cat --ar 16:9", "wide", "ratio"),
        ("a cat, aspect ratio 2:3", "portrait", "ratio"),
        ("a cat 1024x768", "landscape", "ratio"),
        ("phone wallpaper, minimal mountains", "tall", "cue"),
        ("panoramic view of a canyon", "wide", "cue"),
        ("twitter banner with pine trees", "wide", "cue"),
        ("full body photo of a dancer", "portrait", "cue"),
        ("album cover, neon skull", "square", "cue"),
        ("a misty valley with a river", "landscape", "scene"),  # the scene words, not only the type
        ("the view from a cliff over a fjord, tiny boat on the water", "landscape", "scene"),
        ("a woman standing in a wheat field in a white dress", "portrait", "scene"),
        ("close-up of an owl's feathers in the forest", "square", "scene"),
        ("minimalist logo of a bird", "square", "cue"),
        ("a bowl of soup", "square", "content"),
        ("zzz", "landscape", "content"),
    ],
)
def test_aspect(prompt: str, orientation: str, source: str) -> None:
    aspect = analyze_prompt(prompt).aspect
    assert (aspect.orientation, aspect.source) == (orientation, source)
    assert 0 < aspect.confidence <= 1 and aspect.ratio > 0


def test_aspect_follows_the_subject_behind_a_medium() -> None:
    assert analyze_prompt("watercolor of mountains and a lake").aspect.orientation == "landscape"
    assert analyze_prompt("anime, 1girl, solo, smile").aspect.orientation == "portrait"


def test_subjects_and_counts() -> None:
    analysis = analyze_prompt("two cats and a dog on a sofa")
    assert {(s.label, s.count) for s in analysis.subjects} == {("cat", 2), ("dog", 1)}
    assert analysis.subject_count == 3
    assert analyze_prompt("wolves in the forest").subjects[0].count == 2
    tags = analyze_prompt("2girls, 1boy, witch hat")
    assert {(s.label, s.count) for s in tags.subjects} == {("woman", 2), ("man", 1)}
    assert analyze_prompt("a couple dancing").subject_count == 2
    assert analyze_prompt("no humans, scenery").subjects == ()


def test_cues() -> None:
    analysis = analyze_prompt(
        "cyberpunk city street at night, rain, neon lights, oil painting by greg rutkowski and by Jane Doe, "
        "moody, 35mm, bokeh, masterpiece, best quality, autumn, worst quality"
    )
    labels = lambda cues: {c.label for c in cues}  # noqa: E731
    assert "cyberpunk" in labels(analysis.styles)
    assert "oil painting" in labels(analysis.mediums)
    assert {"greg rutkowski", "jane doe"} <= labels(analysis.artists)
    assert "moody" in labels(analysis.moods)
    assert "neon" in labels(analysis.lighting)
    assert {"bokeh", "standard lens"} <= labels(analysis.camera)
    assert "night" in labels(analysis.time_of_day) and "rain" in labels(analysis.weather)
    assert "autumn" in labels(analysis.seasons)
    assert {"masterpiece", "best quality"} <= labels(analysis.quality)
    assert "low quality" in labels(analysis.negative)
    assert all(0 < c.confidence <= 1 for c in analysis.styles + analysis.artists)
    assert analysis.style_labels[0] == "cyberpunk"


def test_nsfw() -> None:
    assert analyze_prompt("nsfw, nude woman on a bed").nsfw
    safe = analyze_prompt("portrait, nude lipstick, soft light")
    assert not safe.nsfw and safe.nsfw_score == 0
    suggestive = analyze_prompt("woman in a bikini on the beach")
    assert not suggestive.nsfw and suggestive.nsfw_score > 0


@pytest.mark.parametrize(
    ("prompt", "language"),
    [
        ("a cat sitting on the windowsill", "en"),
        ("1girl, solo, long hair", "en"),
        ("un gato naranja durmiendo en el sofá", "es"),
        ("ein Fuchs im Wald mit dem Herbstlaub", "de"),
        ("portrait d'une femme avec un chapeau rouge", "fr"),
        ("ritratto di un anziano pescatore nella luce", "it"),
        ("富士山と湖の風景、朝焼け", "ja"),
        ("山水风景，云雾缭绕的山峰", "zh"),  # noqa: RUF001
        ("зимний пейзаж с лесом", "ru"),  # noqa: RUF001
        ("한국 전통 가옥", "ko"),
    ],
)
def test_language(prompt: str, language: str) -> None:
    assert analyze_prompt(prompt).language == language


def test_non_english_content() -> None:
    assert analyze_prompt("un paisaje de montaña al atardecer").content_type == "landscape"
    assert analyze_prompt("猫の写真").content_type == "animal"
    assert analyze_prompt("Ölgemälde einer Berglandschaft").content_type == "painting"


def test_accepts_a_parsed_document_and_ignores_syntax() -> None:
    doc = parse_prompt("<lora:x:1> (oil painting:1.3) of a [castle|fortress] AND sky BREAK clouds")
    analysis = analyze_prompt(doc)
    assert analysis.content_type == "painting"
    assert analysis.source == "rules"


def test_fast_enough() -> None:
    prompts = [
        "masterpiece, best quality, 1girl, solo, long hair, looking at viewer, (smile:1.2), cherry blossoms",
        "portrait of an old fisherman with a weathered face, 85mm lens, f/1.8, natural light, by steve mccurry",
        "<lora:detail:0.6> a [snowy:green:0.4] mountain valley, (river:1.2), landscape photography BREAK fog",
        "un paisaje de montaña al atardecer con un lago",
    ]
    for p in prompts:
        analyze_prompt(p)  # vocabularies load once per process
    times = []
    for _ in range(50):
        for p in prompts:
            start = time.process_time()
            analyze_prompt(p)
            times.append(time.process_time() - start)
    assert statistics.median(times) < 0.001  # CPU time: the machine may be busy with other work


def test_scene_framing_names_its_words() -> None:
    wide = analyze_prompt("sweeping vista over rolling hills at dawn").aspect
    assert wide.orientation == "landscape" and wide.source == "scene"
    assert "vista" in wide.cue and "a wide scene" in wide.cue
    figure = analyze_prompt("a knight standing in a hall, full body").aspect
    assert figure.orientation == "portrait" and figure.source in ("scene", "cue")
    close = analyze_prompt("macro shot of a dewdrop on a leaf in a vast meadow").aspect
    assert close.orientation not in ("landscape", "wide")  # a close-up is never wide


def test_one_person_in_a_vast_scene_is_not_a_portrait() -> None:
    assert analyze_prompt("a surfer riding a huge wave at sunset").content_type != "portrait"
    assert analyze_prompt("portrait of a surfer, 85mm").content_type == "portrait"


def test_a_decision_made_elsewhere_replaces_the_rules_and_the_frame_follows() -> None:
    rules = analyze_prompt("a bowl of ramen")
    assert (rules.content_type, rules.aspect.orientation) == ("food", "square")
    portrait = analyze_prompt("a bowl of ramen", decided=("portrait", 0.8))
    assert (portrait.content_type, portrait.content_confidence) == ("portrait", 0.8)
    assert portrait.aspect.orientation == "portrait" and portrait.aspect.cue == "portrait"
    assert [s.label for s in portrait.content_scores][:2] == ["portrait", "food"]  # the rules' support stays
    anime = analyze_prompt("a bowl of ramen", decided=("anime", 0.8))
    assert anime.content_type == "anime" and anime.aspect.cue == "food"  # a medium keeps its subject's frame
    assert analyze_prompt("a quiet moment", decided=("photo", 0.6)).content_type == "photo"
