"""The USE content classifier: the fit separates separable classes, the folded z-scoring and the rounded JSON
read embeddings as the fit does, and malformed data is one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from ml_lib.diffusion.errors import ConfigError
from ml_lib.diffusion.prompt.use_model import UseContentModel, fit_content_model


def clusters(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three noisy clusters in 16 dimensions, 20 rows each, around different directions."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[[0, 5, 9]] * 3.0
    rows = np.vstack([c + rng.normal(0, 0.6, (20, 16)) for c in centres])
    return rows, [label for label in ("food", "interior", "photo") for _ in range(20)]


def test_the_fit_reads_its_classes_and_the_json_reads_the_same() -> None:
    vectors, labels = clusters()
    model = fit_content_model(vectors, labels)
    assert model.classes == ("food", "interior", "photo") and model.dimensions == 16
    test, truth = clusters(seed=1)
    read = [model.read(v) for v in test]
    assert sum(r.label == t for r, t in zip(read, truth, strict=True)) >= 57  # 95% of unseen rows
    assert all(r.probability >= r.runner_up_probability and r.label != r.runner_up for r in read)
    again = UseContentModel.from_json(model.to_json(built_by="test"))
    assert [again.read(v).label for v in test] == [r.label for r in read]
    assert np.allclose(again.probabilities(test[0]), model.probabilities(test[0]), atol=1e-3)
    assert model.to_json(built_by="test")["built_by"] == "test"


def test_scale_does_not_matter() -> None:
    vectors, labels = clusters()
    model = fit_content_model(vectors, labels)
    assert np.allclose(model.probabilities(vectors[0] * 7.0), model.probabilities(vectors[0]))


@pytest.mark.parametrize(
    "data",
    [{"classes": ["a", "b"], "bias": [0, 0]}, {"classes": ["a", "b"], "bias": [0], "weights": [[1], [2]]}],
)
def test_malformed_data_is_a_config_error(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="USE content model"):
        UseContentModel.from_json(data)


def test_a_wrong_width_is_a_config_error() -> None:
    model = UseContentModel(("a", "b"), np.eye(2), np.zeros(2))
    with pytest.raises(ConfigError, match="wants 2-d embeddings, got 3-d"):
        model.read([1.0, 0.0, 0.0])
