"""Semantic analysis: missing extra → ConfigError; embedding votes feed the rules' decision."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ml_lib.diffusion.errors import ConfigError
from ml_lib.diffusion.prompt import semantic
from ml_lib.diffusion.prompt.lexicon import load_vocab


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    model, prototypes = semantic._model, semantic._prototypes
    model.cache_clear()
    prototypes.cache_clear()
    yield
    model.cache_clear()
    prototypes.cache_clear()


class FakeEncoder:
    """Unit vectors: each prototype sentence points along its content type (or style); a prompt points
    along concept_art when it mentions a dragon, else along photo."""

    def __init__(self) -> None:
        data = load_vocab("semantic")
        self.axes: dict[str, int] = {}
        for label, sentences in data["content_types"].items():
            for sentence in sentences:
                self.axes[sentence] = list(data["content_types"]).index(label)
        offset = len(data["content_types"])
        for i, sentence in enumerate(data["styles"].values()):
            self.axes[sentence] = offset + i
        self.size = offset + len(data["styles"])
        self.concept = list(data["content_types"]).index("concept_art")
        self.photo = list(data["content_types"]).index("photo")

    def encode(self, texts: list[str], **_: object) -> list[list[float]]:
        rows = []
        for text in texts:
            axis = self.axes.get(text, self.concept if "dragon" in text else self.photo)
            rows.append([1.0 if i == axis else 0.0 for i in range(self.size)])
        return rows


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch, fresh_caches: None) -> None:
    monkeypatch.setattr(semantic, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r'pip install "ml-lib\[semantic\]"'):
        semantic.SemanticAnalyzer().analyze("a cat")


def test_embedding_votes_join_the_rules(monkeypatch: pytest.MonkeyPatch, fresh_caches: None) -> None:
    monkeypatch.setattr(semantic, "_model", FakeEncoder)
    analyzer = semantic.SemanticAnalyzer(weight=3.0)
    dragon = analyzer.analyze("a dragon above the clouds")
    assert dragon.source == "rules+semantic"
    assert dragon.content_type == "concept_art"  # 3 points from the embeddings, none from the rules
    assert "concept_art" in dragon.notes[-1]
    # the rules still decide when they are sure: a named medium outweighs the embedding vote
    painting = analyzer.analyze("oil painting of a dragon")
    assert painting.content_type == "painting"
    assert analyzer.analyze("").source == "rules"


@pytest.mark.skipif(not semantic.is_available(), reason='needs pip install "ml-lib[semantic]"')
def test_real_model_offline(fresh_caches: None) -> None:
    analyzer = semantic.SemanticAnalyzer()
    analysis = analyzer.analyze("a knight fighting a dragon on a cliff, epic fantasy scene")
    assert analysis.source == "rules+semantic"
    assert analysis.content_type in {"concept_art", "painting", "illustration", "landscape"}
    assert "fantasy" in analysis.style_labels
