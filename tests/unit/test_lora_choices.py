"""LoRA choices a person would make: a mention is not a style, siblings, tag soup, no fit in the family."""

from __future__ import annotations

from pathlib import Path

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.plan import ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.lora_cache import IndexCache
from ml_lib.diffusion.planning.loras import LoraIndex, choose_loras
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings
from ml_lib.diffusion.testing.records import lora_record

XL, SD1, FLUX = Family.SDXL, Family.SD1, Family.FLUX

LIBRARY = (
    lora_record("leather_xl", triggers=("leathercraft style",), civitai_tags=("style", "material"),
                tags=(("leather", 120), ("tooled leather", 90), ("stitching", 70)),
                description="Everything rendered as hand-tooled leather. Not for photos of leather goods."),
    lora_record("watercolor_xl", triggers=("wtrclr",), civitai_tags=("style", "watercolor"),
                tags=(("watercolor", 100), ("painting", 60), ("soft colors", 50))),
    lora_record("stained_glass_xl", triggers=("stained glass",), civitai_tags=("style", "glass"),
                tags=(("church window", 90), ("colorful glass", 80), ("lead lines", 60))),
    lora_record("charcoal_xl", triggers=("charcoal drawing",), civitai_tags=("style", "drawing"),
                tags=(("charcoal", 90), ("graphite", 60), ("sketch", 50))),
    lora_record("porsche911_xl", triggers=("911 carrera",), civitai_tags=("vehicle", "car"),
                tags=(("porsche", 120), ("sports car", 110), ("round headlights", 90), ("wheels", 70))),
    lora_record("fantasy_armor_xl", triggers=("fantasy armor",), civitai_tags=("clothing", "armor"),
                tags=(("knight", 100), ("plate armor", 90), ("ornate armor", 80), ("helmet", 60))),
    lora_record("samurai_armor_xl", triggers=("samurai armor",), civitai_tags=("clothing", "armor"),
                tags=(("samurai", 110), ("japanese armor", 95), ("kabuto", 60), ("katana", 40))),
    lora_record("miku_xl", triggers=("hatsune miku",), civitai_tags=("character", "anime"),
                tags=(("1girl", 200), ("solo", 190), ("masterpiece", 180), ("best quality", 180),
                      ("twintails", 150), ("aqua hair", 140))),
    lora_record("lineart_xl", triggers=("lineart",), civitai_tags=("style", "line art"),
                tags=(("line art", 100), ("monochrome", 80), ("ink", 70), ("sketch", 60))),
    lora_record("inkwash_flux", FLUX, triggers=("sumi-e",), civitai_tags=("style", "traditional art"),
                tags=(("ink wash painting", 100), ("sumi-e", 90), ("bamboo", 40))),
)  # fmt: skip
INDEX = LoraIndex(LIBRARY)


def choose(prompt: str, family: Family = XL, limit: int = 3):  # type: ignore[no-untyped-def]
    return choose_loras(prompt, INDEX, family, analyze_prompt(prompt), limit=limit)


def names(prompt: str, family: Family = XL) -> list[str]:
    return [p.record.name for p in choose(prompt, family).picks]


def test_a_material_on_an_object_in_a_product_shot_is_a_mention() -> None:
    choice = choose("a stained glass table lamp on a nightstand, product shot, warm light")
    assert choice.picks == ()  # its trigger matched, but names the lamp's material
    assert "stained_glass_xl" in choice.reason and "not a style" in choice.reason
    assert choice.decision is not None and choice.decision.value == "none"
    assert names("a leather wallet and a tooled leather belt on a desk, product photography") == []
    assert names("stained glass window of a phoenix, lead lines") == ["stained_glass_xl"]


def test_the_same_material_asked_as_the_look_is_a_style() -> None:
    assert names("an owl made of tooled leather, stitching") == ["leather_xl"]
    assert names("a fox, leathercraft style") == ["leather_xl"]


def test_a_tool_of_an_art_form_is_a_mention() -> None:
    assert names("a box of charcoal sticks and sketch paper, still life") == []
    assert names("a set of watercolor brushes on a table") == []
    assert names("charcoal drawing of an old sailor") == ["charcoal_xl"]
    assert names("soft watercolor painting of a harbour") == ["watercolor_xl"]


def test_a_car_described_by_its_parts_is_not_that_car_model() -> None:
    choice = choose("a red sports car with round headlights and chrome wheels on a coastal road")
    assert choice.picks == ()
    assert "porsche911_xl" in choice.reason and "never names it" in choice.reason
    assert names("a white 911 carrera in front of a villa") == ["porsche911_xl"]


def test_a_sibling_needs_evidence_of_its_own() -> None:
    assert names("samurai in lacquered samurai armor holding a katana") == ["samurai_armor_xl"]
    assert names("knight in ornate plate armor, helmet") == ["fantasy_armor_xl"]
    # both named: both picked, each on its own words
    both = names("fantasy armor knight duelling a samurai in samurai armor with a katana")
    assert sorted(both) == ["fantasy_armor_xl", "samurai_armor_xl"]


def test_tag_soup_is_no_evidence() -> None:
    choice = choose("masterpiece, best quality, 1girl, solo, looking at viewer, highres")
    assert choice.picks == ()
    assert "booru" in choice.reason and "masterpiece" in choice.reason
    assert names("masterpiece, best quality, 1girl, hatsune miku, twintails") == ["miku_xl"]


def test_no_fit_in_this_family_is_none_with_what_was_missing() -> None:
    choice = choose("sumi-e ink wash painting of bamboo, monochrome ink")
    assert choice.picks == ()  # not the loosely related line-art LoRA
    assert "sumi-e" in choice.reason and "inkwash_flux" in choice.reason and "SDXL" in choice.reason
    assert [p.record.name for p in choose("sumi-e painting of bamboo", FLUX).picks] == ["inkwash_flux"]


def test_other_family_never_picked_even_when_named() -> None:
    assert names("sumi-e", FLUX) == ["inkwash_flux"]
    assert all(p.record.family is SD1 for p in choose("sumi-e, wtrclr, lineart", SD1).picks)


def test_negated_words_are_not_evidence() -> None:
    assert names("a harbour at dawn, no watercolor, no painting") == []


def test_the_planner_records_none_with_the_reason(tmp_path: Path) -> None:
    planner = Planner(Settings(home=tmp_path, limits=Limits(max_side=2048)), seed_source=lambda: 7)
    model = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sdxl", "epsilon", "x")
    prompt = "sumi-e ink wash painting of bamboo"
    resolved = ResolvedRequest(model, candidates=LIBRARY)
    plan = planner.plan(GenerationRequest(prompt), resolved, analyze_prompt(prompt), DeviceInfo("cpu", "t"))
    decision = plan.decision("lora")
    assert plan.loras == () and decision is not None
    assert (
        decision.value == "none" and decision.source is Source.CATALOG and "inkwash_flux" in decision.reason
    )


def test_index_cache_rebuilds_only_for_new_records() -> None:
    cache = IndexCache()
    records = LIBRARY[:3]
    first = cache.get(records)
    assert cache.get(records) is first and cache.builds == 1
    changed = (*records, LIBRARY[3])
    assert cache.get(changed) is not first and cache.builds == 2
    assert [r.name for r in cache.get(changed).records] == [r.name for r in changed]
