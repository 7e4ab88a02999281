"""Checkpoint choice from catalog records against the prompt analysis."""

from __future__ import annotations

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import ModelRecord, Status
from ml_lib.diffusion.plan import Source
from ml_lib.diffusion.planning.auto import Candidates, auto_checkpoint
from ml_lib.diffusion.planning.models import choose_checkpoint
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.testing.records import checkpoint_record, lora_record

LIBRARY = (
    checkpoint_record("juggernautXL_v9", tags=("photorealistic", "base model")),
    checkpoint_record("animagineXL_v31", base_model="SDXL 1.0", tags=("anime",)),
    checkpoint_record("ponyDiffusionV6XL", derivative="Pony", base_model="Pony"),
    checkpoint_record("dreamshaper_8", Family.SD1, description="a general artistic model, fantasy art"),
    checkpoint_record("flux1-dev", Family.FLUX, tags=("photorealistic",)),
    checkpoint_record("broken_realistic", status=Status.BROKEN),
    lora_record("realistic_skin"),
)


def pick(prompt: str, records=LIBRARY, **kw) -> ModelRecord:  # type: ignore[no-untyped-def]
    choice = choose_checkpoint(analyze_prompt(prompt), records, **kw)
    assert choice is not None
    return choice.record


def test_photo_prompt_picks_the_realistic_model() -> None:
    assert pick("raw photo of an old fisherman, 85mm lens").name == "juggernautXL_v9"


def test_anime_prompt_picks_an_anime_model() -> None:
    assert pick("anime girl with silver hair, cherry blossoms").name in {
        "animagineXL_v31",
        "ponyDiffusionV6XL",
    }


def test_painting_prompt_picks_the_artistic_model() -> None:
    assert pick("oil painting of a castle, fantasy art").name == "dreamshaper_8"


def test_unloadable_broken_and_non_checkpoints_are_never_chosen() -> None:
    for prompt in ("photo of a fox", "anime girl", "oil painting", "a logo"):
        chosen = pick(prompt)
        assert chosen.family in (Family.SD1, Family.SD2, Family.SDXL) and chosen.status is Status.OK


def test_ties_break_by_name_whatever_the_order() -> None:
    a, b, c = (checkpoint_record(n) for n in ("beta", "alpha", "gamma"))
    assert pick("a fox", (a, b, c)).name == "alpha"
    assert pick("a fox", (c, b, a)).name == "alpha"


def test_hooks_extend_the_score() -> None:
    records = (checkpoint_record("alpha"), checkpoint_record("beta"))
    assert pick("a fox", records, prior=lambda r: 1.0 if r.name == "beta" else 0.0).name == "beta"
    assert pick("a fox", records, memory_fit=lambda r: -1.0 if r.name == "alpha" else 0.0).name == "beta"


def test_no_candidates_is_none() -> None:
    assert choose_checkpoint(analyze_prompt("a fox"), ()) is None
    assert choose_checkpoint(analyze_prompt("a fox"), (checkpoint_record("f", Family.FLUX),)) is None


def test_decision_is_catalog_with_a_reason() -> None:
    choice = choose_checkpoint(analyze_prompt("photo of a fox"), LIBRARY)
    assert choice is not None
    d = choice.decision
    assert d.source is Source.CATALOG and d.field == "model" and "juggernaut" in d.reason
    assert d.value == "juggernautXL_v9"


def test_auto_checkpoint_respects_the_request() -> None:
    analysis, candidates = analyze_prompt("photo of a fox"), Candidates.of(LIBRARY)
    assert auto_checkpoint(GenerationRequest("x"), analysis, candidates) is not None
    assert auto_checkpoint(GenerationRequest("x", model="m"), analysis, candidates) is None
    assert auto_checkpoint(GenerationRequest("x", auto=False), analysis, candidates) is None
    assert auto_checkpoint(GenerationRequest("x"), analysis, None) is None


def test_facade_analyze_and_model_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ml_lib.diffusion.facade import ImageGenerator
    from ml_lib.diffusion.planning.auto import model_reference
    from ml_lib.diffusion.settings import Settings

    assert (
        ImageGenerator(Settings(home=tmp_path)).analyze("anime girl, cherry blossoms").content_type == "anime"
    )
    choice = choose_checkpoint(analyze_prompt("photo of a fox"), LIBRARY)
    assert model_reference(GenerationRequest("x"), choice) == choice.record.path  # type: ignore[union-attr]
    assert model_reference(GenerationRequest("x", model="m"), choice) == "m"
    assert model_reference(GenerationRequest("x"), None) is None
