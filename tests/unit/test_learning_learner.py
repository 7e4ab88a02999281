"""The learner (ratings and modifications → preferences) and the planner using them; cold start unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.learning.learner import learn
from ml_lib.diffusion.learning.records import Feedback, FeedbackKind, GenerationRecord, Override, new_id
from ml_lib.diffusion.learning.service import History
from ml_lib.diffusion.plan import ModelFormat, ModelRef, ResolvedRequest, Source
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.planning.preferences import ContextPreferences, LearningContext, Preferences
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings
from ml_lib.diffusion.testing.records import lora_record

CPU = DeviceInfo("cpu", "test CPU")
PORTRAIT = LearningContext("sd1", "portrait", "photograph")
EVAL = Path(__file__).parents[2] / "benchmarks" / "data" / "intelligence_eval.jsonl"
MODEL = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "x")
LORAS = (
    lora_record("film_grain", Family.SD1, triggers=("film grain",), tags=(("photo", 10), ("portrait", 8))),
    lora_record("watercolor", Family.SD1, triggers=("watercolor",), tags=(("painting", 10),)),
    lora_record("detail_eyes", Family.SD1, triggers=("detailed eyes",), tags=(("portrait", 10),)),
)


def gen(ctx: LearningContext, cfg: float, *, rec: float | None = None, loras: dict[str, float] | None = None,
        overrides: tuple[Override, ...] = (), t: float = 0.0) -> GenerationRecord:  # fmt: skip
    values = (("cfg_scale", cfg), ("steps", 25), ("size", "512x512"), ("sampler", "DPM++ 2M"))
    values += tuple((f"lora:{k}", v) for k, v in (loras or {}).items())
    if rec is not None and rec != cfg:
        overrides += (Override("cfg_scale", rec, cfg),)
    return GenerationRecord(new_id(), t, ctx, "p", "{}", "{}", values, overrides)


def rate(record: GenerationRecord, stars: int) -> Feedback:
    return Feedback(new_id(), record.id, record.created + 1, FeedbackKind.RATING, stars)


def planner(tmp_path: Path, prefs: Preferences | None) -> Planner:
    return Planner(Settings(home=tmp_path), seed_source=lambda: 777, preferences=prefs)


def test_an_empty_history_learns_nothing() -> None:
    assert learn([], []) == Preferences()


def test_lowering_cfg_again_and_again_is_learned_with_its_reason(tmp_path: Path) -> None:
    records = [gen(PORTRAIT, 5.5, rec=7.0, t=i) for i in range(7)] + [
        gen(PORTRAIT, 7.0, t=7 + i) for i in range(2)
    ]
    prefs = learn(records, [])
    learned = prefs.at(PORTRAIT).value("cfg_scale")
    assert learned is not None and learned.value == 5.5
    assert "you lowered CFG on 7 of your last 9 portrait, photograph prompts" in learned.reason
    request = GenerationRequest("close-up portrait photo of an old fisherman")
    analysis = analyze_prompt(request.prompt)
    plan = planner(tmp_path, prefs).plan(request, ResolvedRequest(MODEL), analysis, CPU)
    cfg = plan.decision("cfg_scale")
    assert plan.cfg_scale == 5.5 and cfg is not None and cfg.source is Source.LEARNED
    assert "lowered CFG" in cfg.reason
    forced = planner(tmp_path, prefs).plan(
        GenerationRequest(request.prompt, cfg_scale=9.0), ResolvedRequest(MODEL), analysis, CPU
    )
    assert forced.cfg_scale == 9.0  # the user's value still wins


def test_ratings_alone_move_a_value_only_with_enough_evidence() -> None:
    good = [gen(PORTRAIT, 4.5, t=i) for i in range(4)]
    bad = [gen(PORTRAIT, 7.0, t=10 + i) for i in range(4)]
    prefs = learn(good + bad, [rate(r, 5) for r in good] + [rate(r, 2) for r in bad])
    learned = prefs.at(PORTRAIT).value("cfg_scale")
    assert learned is not None and learned.value == 4.5 and "rated" in learned.reason
    one = gen(PORTRAIT, 4.5)
    assert learn([one], [rate(one, 5)]).at(PORTRAIT).value("cfg_scale") is None  # one rating is not enough


def test_a_thin_context_backs_off_to_the_coarser_one() -> None:
    records = [gen(LearningContext("sd1", "landscape"), 9.0, rec=7.0, t=i) for i in range(5)]
    prefs = learn(records, [])
    fresh = LearningContext("sd1", "portrait", "anime")  # never seen: family-level value applies
    learned = prefs.at(fresh).value("cfg_scale")
    assert learned is not None and learned.value == 9.0 and "sd1 plans" in learned.reason
    assert prefs.at(LearningContext("sdxl", "portrait")).value("cfg_scale") is None


def test_a_lora_removed_is_dropped_and_one_added_is_recommended(tmp_path: Path) -> None:
    drop = [
        gen(PORTRAIT, 7.0, loras={}, overrides=(Override("lora:film_grain", 0.8, None),), t=i)
        for i in range(3)
    ]
    add = [gen(PORTRAIT, 7.0, loras={"detail_eyes": 0.6}, overrides=(Override("lora:detail_eyes", None, 0.6),),
               t=5 + i) for i in range(3)]  # fmt: skip
    prefs = learn(drop + add, [rate(r, 5) for r in add])
    at = prefs.at(PORTRAIT)
    assert at.lora("film_grain") is not None and at.lora("film_grain").action == "drop"  # type: ignore[union-attr]
    eyes = at.lora("detail_eyes")
    assert eyes is not None and eyes.action == "add" and eyes.weight == 0.6
    request = GenerationRequest("portrait photo of a woman, film grain")
    resolved = ResolvedRequest(MODEL, candidates=LORAS)
    analysis = analyze_prompt(request.prompt)
    before = planner(tmp_path, None).plan(request, resolved, analysis, CPU)
    assert "film_grain" in [lo.name for lo in before.loras]
    after = planner(tmp_path, prefs).plan(request, resolved, analysis, CPU)
    assert [(lo.name, lo.unet_weight) for lo in after.loras] == [("detail_eyes", 0.6)]
    learned = [d for d in after.decisions if d.field == "lora"]
    assert learned and learned[0].source is Source.LEARNED and "added it 3 time(s)" in learned[0].reason


def test_exploration_is_bounded_and_seeded(tmp_path: Path) -> None:
    prefs = Preferences((ContextPreferences("sd1", 5),), explore=1.0)
    request = GenerationRequest("a fox in the snow", seed=11)
    plans = [planner(tmp_path, prefs).plan(request, ResolvedRequest(MODEL), None, CPU) for _ in range(2)]
    assert plans[0] == plans[1]
    moved = [(p.cfg_scale, p.steps) for p in plans]
    assert moved[0] in {(6.5, 25), (7.5, 25), (7.0, 21), (7.0, 29)}
    explored = [d for d in plans[0].decisions if d.source is Source.LEARNED]
    assert len(explored) == 1 and explored[0].reason.startswith("exploring")


def _labelled() -> list[str]:
    return [
        json.loads(line)["prompt"] for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


@pytest.mark.parametrize("family", ["sd1", "sdxl", "demo"])
def test_cold_start_plans_equal_todays_on_the_labelled_set(tmp_path: Path, family: str) -> None:
    history = History(tmp_path / "history.sqlite3")
    history.store  # an existing, empty history file  # noqa: B018
    empty = history.preferences()
    assert empty == Preferences()
    model = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, family, "epsilon", "x")
    resolved = ResolvedRequest(model, candidates=LORAS)
    for prompt in _labelled():
        request, analysis = GenerationRequest(prompt), analyze_prompt(prompt)
        with_learner = planner(tmp_path, empty).plan(request, resolved, analysis, CPU)
        without = planner(tmp_path, None).plan(request, resolved, analysis, CPU)
        assert with_learner.to_json() == without.to_json(), prompt
    history.close()
