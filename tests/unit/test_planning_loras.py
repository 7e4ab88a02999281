"""LoRA recommendation: BM25 over triggers/tags/names/sidecars, family safety, triggers, user LoRAs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import SpeedHint
from ml_lib.diffusion.plan import LoraUse, ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.loras import LoraIndex, insert_triggers, lora_weight, recommend_loras
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Limits, Settings
from ml_lib.diffusion.testing.records import lora_record

CPU = DeviceInfo("cpu", "test CPU")
XL, SD1 = Family.SDXL, Family.SD1

LIBRARY = (
    lora_record("pixel_art_xl", triggers=("pixel art",), tags=(("pixel art", 80), ("8bit", 20))),
    lora_record("watercolor_style_xl", triggers=("wtrclr",), tags=(("watercolor", 50), ("painting", 30))),
    lora_record("aquarelle_dreams_xl", tags=(("watercolor", 40), ("soft colors", 10))),
    lora_record("cyberpunk_city_xl", triggers=("cyberpunk",), tags=(("neon lights", 40), ("city", 40))),
    lora_record("add_detail_xl", civitai_tags=("detail", "tool"), description="adds fine detail"),
    lora_record("film_grain_xl", triggers=("film grain",), weight=0.6, tags=(("film grain", 30),)),
    lora_record("pixel_art_sd15", SD1, triggers=("pixel art",), tags=(("pixel art", 90),)),
    lora_record("watercolor_sd15", SD1, triggers=("watercolor",), tags=(("watercolor", 60),)),
    lora_record("lcm_lora_sdxl", speed=SpeedHint("LCM", 4, 1.5, "LCM", None, "name")),
)
INDEX = LoraIndex(LIBRARY)


def names(prompt: str, family: Family = XL, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    picks = recommend_loras(prompt, INDEX, family, analyze_prompt(prompt), **kw)
    return [p.record.name for p in picks]


@pytest.mark.parametrize(
    ("prompt", "family", "expected"),
    [
        ("pixel art of a knight fighting a dragon", XL, ["pixel_art_xl"]),
        ("pixel art of a knight fighting a dragon", SD1, ["pixel_art_sd15"]),
        ("a cyberpunk street at night, neon lights, rain", XL, ["cyberpunk_city_xl"]),
        ("a portrait of a woman, film grain", XL, ["film_grain_xl"]),
        ("a quiet harbour at dawn", XL, []),
    ],
)
def test_recommendations_on_small_cases(prompt: str, family: Family, expected: list[str]) -> None:
    assert names(prompt, family) == expected


def test_two_loras_for_the_same_style_keep_the_best() -> None:
    got = names("watercolor painting of a fox in a forest")
    assert got[0] == "watercolor_style_xl"
    assert "aquarelle_dreams_xl" not in got


def test_at_most_limit() -> None:
    prompt = "pixel art cyberpunk city, neon lights, film grain"
    assert len(names(prompt)) == 2
    assert len(names(prompt, limit=3)) == 3
    assert names(prompt, limit=0) == []


def test_never_another_family_property() -> None:
    rng = random.Random(4)
    words = [w for r in LIBRARY for w in (*r.trigger_words, r.name.replace("_", " "))] + ["a fox", "a city"]
    for _ in range(300):
        prompt = ", ".join(rng.sample(words, 3))
        for family in (Family.SD1, Family.SD2, Family.SDXL, Family.FLUX):
            for p in recommend_loras(prompt, INDEX, family, None, limit=5, threshold=0.0):
                assert p.record.family is family


def test_speed_loras_are_never_recommended() -> None:
    assert "lcm_lora_sdxl" not in names("lcm lora sdxl, fast", limit=5)


def test_weight_from_sidecar_else_default() -> None:
    assert lora_weight(LIBRARY[5]) == (0.6, "sidecar preferred weight")
    assert lora_weight(LIBRARY[0])[0] == 0.8


def test_evidence_and_decision() -> None:
    (pick,) = recommend_loras("pixel art of a cat", INDEX, XL, None)
    assert "trigger:pixel art" in pick.evidence  # evidence is by phrase: the words it stands on
    d = pick.decision
    assert d.source is Source.CATALOG and "score" in d.reason and "trigger:pixel art" in d.reason


def test_insert_triggers_once() -> None:
    assert insert_triggers("a cat", ["wtrclr", "wtrclr"]) == "a cat, wtrclr"
    assert insert_triggers("a WTRCLR cat", ["wtrclr"]) == "a WTRCLR cat"
    assert insert_triggers("a cat", [None]) == "a cat"


# -- through the planner ------------------------------------------------------------------------
@pytest.fixture
def planner(tmp_path: Path) -> Planner:
    return Planner(Settings(home=tmp_path, limits=Limits(max_side=2048)), seed_source=lambda: 7)


def plan(planner: Planner, prompt: str, loras: tuple[LoraUse, ...] = (), **kw):  # type: ignore[no-untyped-def]
    m = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sdxl", "epsilon", "x")
    resolved = ResolvedRequest(m, loras=loras, candidates=LIBRARY)
    return planner.plan(GenerationRequest(prompt, **kw), resolved, analyze_prompt(prompt), CPU)


def test_planner_adds_lora_and_trigger_once(planner: Planner) -> None:
    p = plan(planner, "watercolor painting of a fox")
    assert [lora.name for lora in p.loras] == ["watercolor_style_xl"]
    assert p.prompt == "watercolor painting of a fox, wtrclr"
    assert p.prompt.count("wtrclr") == 1
    assert any(d.field == "lora" and d.source is Source.CATALOG for d in p.decisions)
    assert p.decision("prompt").source is Source.CATALOG  # type: ignore[union-attr]


def test_trigger_already_present_is_not_repeated(planner: Planner) -> None:
    p = plan(planner, "wtrclr, watercolor painting of a fox")
    assert p.prompt == "wtrclr, watercolor painting of a fox" and p.decision("prompt") is None


def test_user_named_loras_are_kept_and_not_duplicated(planner: Planner) -> None:
    rec = LIBRARY[1]
    user = LoraUse("watercolor_style_xl", rec.path, 0.5, 0.5)
    p = plan(planner, "watercolor painting of a fox", (user,))
    assert p.loras[0] == user
    assert [lora.path for lora in p.loras].count(rec.path) == 1
    assert p.decisions[[d.field for d in p.decisions].index("lora")].source is Source.USER


def test_auto_false_recommends_nothing(planner: Planner) -> None:
    p = plan(planner, "watercolor painting of a fox", auto=False)
    assert p.loras == () and p.prompt == "watercolor painting of a fox"


def test_semantic_similarity_lifts_a_weak_lexical_match_and_is_evidence() -> None:
    prompt = "a soft painting of a harbour"
    assert names(prompt) == []  # "painting" alone is too weak lexically

    def fake_similarity(query: str, texts):  # type: ignore[no-untyped-def]
        assert query == prompt
        return [0.9 if "wtrclr" in t else 0.0 for t in texts]

    picks = recommend_loras(prompt, INDEX, XL, analyze_prompt(prompt), similarity=fake_similarity)
    assert [p.record.name for p in picks] == ["watercolor_style_xl"]
    assert any(e.startswith("semantic:0.90") for e in picks[0].evidence)
    no_meaning = recommend_loras(
        prompt, INDEX, XL, analyze_prompt(prompt), similarity=lambda q, t: [0.0] * len(t)
    )
    assert no_meaning == ()


def test_semantic_similarity_never_crosses_families() -> None:
    prompt = "pixel art castle, watercolor"
    picks = recommend_loras(
        prompt, INDEX, SD1, analyze_prompt(prompt), similarity=lambda q, t: [1.0] * len(t)
    )
    assert {p.record.family for p in picks} == {SD1}


def test_real_sentence_embeddings_rank_by_meaning() -> None:
    from ml_lib.diffusion.prompt import semantic

    if not semantic.is_available():
        pytest.skip('needs pip install "ml-lib[semantic]"')
    sims = semantic.similarities(
        "a delicate watercolor painting of a lake", ["watercolor painting, soft colors", "pixel art, 8bit"]
    )
    assert sims[0] > sims[1] + 0.1


def test_minor_caption_tags_alone_recommend_nothing() -> None:
    """A style LoRA's captions also name its images' content; matching only those is no reason to use it."""
    tags = (("zqstyle", 400), ("left", 28), ("blue background", 26), ("red circle", 5))
    index = LoraIndex((lora_record("zq_outline", SD1, triggers=("zqstyle",), tags=tags),))
    plain = "a red circle on the left, blue background"
    assert recommend_loras(plain, index, SD1, analyze_prompt(plain)) == ()
    styled = "a zqstyle red circle on the left"
    picks = recommend_loras(styled, index, SD1, analyze_prompt(styled))
    assert [p.record.name for p in picks] == ["zq_outline"] and "trigger:zqstyle" in picks[0].evidence
    major = LoraIndex(
        (lora_record("sketchy", SD1, tags=(("architecture", 104), ("sketch", 84), ("tree", 9))),)
    )
    sketch = "architecture sketch of a museum"
    assert [p.record.name for p in recommend_loras(sketch, major, SD1, analyze_prompt(sketch))] == ["sketchy"]
