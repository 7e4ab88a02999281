"""Round-4 content rules: nouns used as modifiers, things in the distance, booru tags in a photo prompt,
people in a place, a person alone among objects, and the comic and non-English words tuning found missing."""

from __future__ import annotations

from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import stem, tokenize
from ml_lib.diffusion.prompt.word_roles import distant_words, modifier_words


def kind(prompt: str) -> str:
    return analyze_prompt(prompt).content_type


def test_a_noun_that_modifies_the_next_one_is_not_a_subject() -> None:
    words = tokenize("people crossing a zebra crossing near the bus stop")
    assert {words[i].raw for i in modifier_words(words)} == {"zebra", "bus"}
    assert "animal" not in {s.label for s in analyze_prompt("a zebra crossing in the rain").subjects}
    assert kind("a zebra grazing in the grass") == "animal"
    # used as a verb, the word keeps its subject: plural subjects and "crossing a/the …"
    assert kind("a herd of elephants crossing a river in the savanna") == "animal"
    assert kind("a steam locomotive crossing a stone viaduct") == "vehicle"


def test_things_in_the_distance_are_not_the_subject() -> None:
    words = tokenize("endless savanna with acacia trees and a herd of elephants in the distance")
    assert {words[i].raw for i in distant_words(words)} == {"a", "herd", "of", "elephants"}
    assert kind("endless savanna with acacia trees and a herd of elephants in the distance") == "landscape"
    assert kind("a herd of elephants walking across the savanna at sunset") == "animal"


def test_booru_tags_in_a_photo_prompt_are_no_anime_medium() -> None:
    prompt = "(masterpiece:1.2), best quality, 1girl, long silver hair, red eyes, upper body, photorealistic, raw photo"
    assert kind(prompt) == "portrait"
    assert kind("1girl, long silver hair, red eyes, upper body, looking at viewer") == "anime"
    # a real anime word is not borrowed
    assert kind("1girl, anime style, upper body, photo of a shrine") == "anime"


def test_people_in_a_place_are_a_photo_of_them() -> None:
    assert kind("a crowded train station at rush hour, motion blur, people") == "photo"
    assert kind("commuters waiting at a bus stop in the snow, documentary photo") == "photo"
    assert kind("kids jumping into a lake from a wooden dock, summer, candid") == "photo"
    assert kind("a crowded subway car at rush hour, candid") == "photo"
    # the same places without people stay what they are
    assert kind("a quiet old town street at dawn, cobblestones") == "architecture"
    assert kind("a quiet old town street at dawn, crowds of tourists") == "photo"
    assert kind("a wooden dock on a lake, summer") == "landscape"


def test_one_person_among_objects_is_still_a_person_alone() -> None:
    assert kind("a grandmother knitting in a rocking chair, window light, warm tones") == "portrait"
    assert kind("candid photo of a grandmother laughing in her kitchen, kodak portra 400") == "portrait"
    assert kind("a firefighter standing in front of a burning building, full body") == "portrait"
    # the owner of a room is not in it
    assert kind("a messy teenager's bedroom, posters on the wall, 90s") == "interior"


def test_comic_and_non_english_words_from_tuning() -> None:
    assert kind("manga page, a boy looking shocked, screentone, speed lines") == "comic"
    assert kind("comic style illustration of a robot and a girl, bold outlines") == "comic"
    assert kind("Sonnenaufgang über den Alpen, Nebel im Tal") == "landscape"
    assert kind("puente colgante al atardecer, cables de acero, niebla") == "architecture"
    assert kind("salón minimalista con sofá gris y plantas") == "interior"
    assert kind("paella en una sartén grande, mariscos, limón") == "food"
    assert kind("Pferd galoppiert über eine Wiese, Staub") == "animal"


def test_latin_accents_are_dropped_other_scripts_kept() -> None:
    assert stem("sofá") == "sofa" and stem("fotografía") == "fotografia" and stem("über") == "uber"
    assert stem("ドット絵") == "ドット絵" and stem("пейзаж") == "пейзаж"
    # typed with or without the accents, the same words count
    assert kind("salón minimalista con sofá gris y plantas") == "interior"
    assert kind("salon minimalista con sofa gris y plantas") == "interior"
    assert kind("fotografia de una calle de Madrid con gente caminando") == kind(
        "fotografía de una calle de Madrid con gente caminando"
    )


def test_frame_cues_from_tuning() -> None:
    def frame(prompt: str) -> str:
        return analyze_prompt(prompt).aspect.orientation

    assert frame("a tall gothic cathedral facade, looking up, dramatic sky") == "portrait"
    assert frame("ink wash painting of bamboo stalks, hanging scroll") == "tall"
    assert frame("pixel art side-scroller level, forest, platforms") == "landscape"
    assert frame("a golden retriever running on the beach, action shot") == "landscape"
    assert frame("a golden retriever sleeping on a rug") == "square"
