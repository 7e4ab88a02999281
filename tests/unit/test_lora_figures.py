"""Round-4 LoRA rules: an art form named on objects is a mention, a creature made of a material is a
figure, the prompt's medium tips a LoRA of that medium, tag counts in any order, hyphenated triggers."""

from __future__ import annotations

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.planning.lora_index import LoraIndex
from ml_lib.diffusion.planning.lora_judge import judge, read_prompt
from ml_lib.diffusion.planning.loras import choose_loras
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.lexicon import tokenize
from ml_lib.diffusion.testing.records import lora_record

SD1 = Family.SD1

LIBRARY = (
    lora_record("comic_sd1", SD1, triggers=("comic style",), civitai_tags=("style", "comic"),
                tags=(("halftone", 90), ("comic book", 80), ("speech bubble", 70), ("bold outlines", 60))),
    lora_record("dragon_sd1", SD1, triggers=("dragon",), civitai_tags=("creature", "fantasy"),
                tags=(("scales", 100), ("wings", 90), ("fantasy creature", 80), ("fire", 50))),
    lora_record("ceramic_sd1", SD1, triggers=("porcelain style",), civitai_tags=("style", "material"),
                tags=(("porcelain", 100), ("ceramic", 90), ("glaze", 80), ("cracked glaze", 60))),
    lora_record("watercolor_sd1", SD1, triggers=("wtrclr",), civitai_tags=("style", "watercolor"),
                tags=(("watercolor", 100), ("painting", 60), ("soft colors", 50))),
    lora_record("pixel_sd1", SD1, triggers=("pixel art",), civitai_tags=("style", "pixel art"),
                tags=(("pixel art", 110), ("8bit", 27), ("sprite", 91), ("retro game", 5))),
    lora_record("tiltshift_sd1", SD1, triggers=("tilt shift",), civitai_tags=("photography", "effect"),
                tags=(("miniature", 100), ("toy town", 80), ("blur", 60))),
)  # fmt: skip
INDEX = LoraIndex(LIBRARY)


def choose(prompt: str, analysed: bool = True):  # type: ignore[no-untyped-def]
    analysis = analyze_prompt(prompt) if analysed else None
    return choose_loras(prompt, INDEX, SD1, analysis, limit=3)


def names(prompt: str, analysed: bool = True) -> list[str]:
    return sorted(p.record.name for p in choose(prompt, analysed).picks)


def test_an_art_form_named_on_objects_is_a_mention() -> None:
    assert names("a stack of old comic books on a table in a record store, photo") == []
    assert names("comic book panel of a superhero landing, halftone, speech bubble") == ["comic_sd1"]
    assert names("comic book cover of a masked hero, bold outlines, halftone") == ["comic_sd1"]


def test_a_creature_made_of_a_material_is_a_figure_not_the_creature() -> None:
    choice = choose("a dragon made of cracked glaze porcelain")
    assert [p.record.name for p in choice.picks] == ["ceramic_sd1"]
    assert names("a porcelain dragon, porcelain style, cracked glaze") == ["ceramic_sd1"]
    assert names("a red dragon with huge wings breathing fire") == ["dragon_sd1"]
    # a painting medium is not what the dragon is made of: a watercolor dragon is still a dragon
    assert names("watercolor dragon flying over mountains") == ["dragon_sd1", "watercolor_sd1"]
    # a bare "in" is not "made of": a dragon in a glass cage is a dragon
    assert names("a dragon in a glass cage, scales, wings") == ["dragon_sd1"]


def test_the_prompts_medium_tips_a_lora_of_that_medium() -> None:
    prompt = "8bit retro game sprite of a wizard"
    assert names(prompt, analysed=False) == []  # its own tags alone fall short
    pick = choose(prompt).picks[0]
    assert pick.record.name == "pixel_sd1" and "medium:pixel art" in pick.evidence
    # the medium alone (no evidence of the LoRA's own) is not enough
    assert names("a wizard casting a spell, 16-bit") == []


def test_tag_counts_weigh_the_same_in_any_order() -> None:
    tags = (("miniature", 100), ("toy town", 80), ("blur", 10))
    a = LoraIndex([lora_record("a", SD1, triggers=("x",), tags=tags)])
    b = LoraIndex([lora_record("a", SD1, triggers=("x",), tags=tuple(reversed(tags)))])
    words = tokenize("miniature toy town, blur")
    found_a, found_b = a.find(words, set()), b.find(words, set())
    assert sorted(a.evidence(0, found_a), key=str) == sorted(b.evidence(0, found_b), key=str)
    weights = {e.phrase: e.weight for e in a.evidence(0, found_a)}
    assert weights["miniature"] > weights["toy town"] > weights["blur"]


def test_a_hyphenated_trigger_matches_the_spaced_one() -> None:
    assert names("tilt-shift view of a football stadium from above, tiny players") == ["tiltshift_sd1"]
    assert names("tilt shift photo of a harbour, miniature") == ["tiltshift_sd1"]


def test_a_description_word_never_hides_a_tag_phrase() -> None:
    knolling = lora_record(
        "knolling_sd1", SD1, triggers=("knolling",), civitai_tags=("photography", "product"),
        tags=(("organized", 100), ("top-down", 90), ("flat lay", 10)), description="Knolling flat lays",
    )  # fmt: skip
    index = LoraIndex([knolling])
    prompt = "flat lay of camping gear, organized"
    words = read_prompt(prompt, analyze_prompt(prompt))
    judged = judge(0, index.evidence(0, index.find(words.tokens, set())), index, words, set(), 0.1)
    labels = {e.label for e in judged.evidence}
    assert "minor:flat lay" in labels and "text:flat" not in labels and "tag:organized" in labels
