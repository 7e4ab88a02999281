"""Checkpoint choice from catalog records against the prompt analysis."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import ModelRecord, Status
from ml_lib.diffusion.plan import Source
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


def test_choose_model_respects_the_request() -> None:
    from ml_lib.diffusion.errors import RequestError
    from ml_lib.diffusion.resolve.model import choose_model

    analysis = analyze_prompt("photo of a fox")
    auto = choose_model(GenerationRequest("x"), analysis, LIBRARY)
    best = choose_checkpoint(analysis, LIBRARY)
    assert best is not None and auto.reference == best.record.path and auto.decision == best.decision
    named = choose_model(GenerationRequest("x", model="m"), analysis, LIBRARY)
    assert named.reference == "m" and named.decision is None
    for request, records in ((GenerationRequest("x", auto=False), LIBRARY), (GenerationRequest("x"), ())):
        with pytest.raises(RequestError, match="No model given"):
            choose_model(request, analysis, records)


def test_facade_analyze(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ml_lib.diffusion.facade import ImageGenerator
    from ml_lib.diffusion.settings import Settings

    assert (
        ImageGenerator(Settings(home=tmp_path)).analyze("anime girl, cherry blossoms").content_type == "anime"
    )
