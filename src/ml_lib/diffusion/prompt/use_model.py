"""The shipped classifiers over USE-multilingual-v3 sentence embeddings: the content type
(``vocab/use_content.json``) and the frame (``vocab/use_aspect.json``).

A softmax regression over the 512-d unit embedding of a prompt's plain text: one weight row and one bias per
class, the training rows' standardisation folded in. ``scripts/build_use_prototypes.py`` fits them on the
labelled tuning prompts (:func:`fit_content_model`) and writes them; ``use_evidence.py`` reads a prompt with them.
Pure numpy, no encoder here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .lexicon import load_vocab

__all__ = ["UseContentModel", "UseReading", "fit_content_model", "shipped_model", "softmax_weights"]

#: What the shipped models read, each from its vocabulary file ``vocab/use_<kind>.json``.
KINDS = ("content", "aspect")


@dataclass(frozen=True, slots=True)
class UseReading:
    """What the classifier makes of one prompt: the most probable content type and the runner-up."""

    label: str
    probability: float
    runner_up: str
    runner_up_probability: float

    def reason(self, what: str = "it") -> str:
        """E.g. "USE-multilingual reads it as food (0.62 vs 0.21 interior)"; ``what`` names what is read
        ("its frame")."""
        return (
            f"USE-multilingual reads {what} as {self.label} ({self.probability:.2f} vs "
            f"{self.runner_up_probability:.2f} {self.runner_up})"
        )


@dataclass(frozen=True, slots=True)
class UseContentModel:
    """``classes`` with a weight row (``weights[k]``, 512 wide) and ``bias[k]`` each: p = softmax(W x + b)."""

    classes: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        if len(self.classes) < 2 or self.weights.shape[0] != len(self.classes):
            raise ConfigError(
                f"USE content model: {len(self.classes)} classes for {self.weights.shape[0]} weight rows"
            )
        if self.bias.shape != (len(self.classes),):
            raise ConfigError(
                f"USE content model: bias of shape {self.bias.shape}, {len(self.classes)} classes"
            )

    @property
    def dimensions(self) -> int:
        return int(self.weights.shape[1])

    def probabilities(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        """Class probabilities of one embedding (normalised to unit length first, as in training)."""
        x = np.asarray(vector, dtype=np.float64).reshape(-1)
        if x.shape[0] != self.dimensions:
            raise ConfigError(f"USE content model wants {self.dimensions}-d embeddings, got {x.shape[0]}-d")
        x = x / (np.linalg.norm(x) or 1.0)
        z = self.weights @ x + self.bias
        p = np.exp(z - z.max())
        return np.asarray(p / p.sum())

    def read(self, vector: Sequence[float] | np.ndarray) -> UseReading:
        """The most probable content type of one embedding and the runner-up."""
        p = self.probabilities(vector)
        first, second = (int(k) for k in np.argsort(-p, kind="stable")[:2])
        return UseReading(self.classes[first], float(p[first]), self.classes[second], float(p[second]))

    def to_json(self, digits: int = 5, **about: Any) -> dict[str, Any]:
        """The model as JSON-ready data, numbers rounded to ``digits`` significant digits; ``about`` records
        how it was built."""

        def rounded(values: np.ndarray) -> list[float]:
            return [float(f"{v:.{digits}g}") for v in values.tolist()]

        return {
            **about,
            "classes": list(self.classes),
            "bias": rounded(self.bias),
            "weights": [rounded(row) for row in self.weights],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UseContentModel:
        try:
            classes = tuple(str(c) for c in data["classes"])
            weights = np.asarray(data["weights"], dtype=np.float64)
            bias = np.asarray(data["bias"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"USE content model: malformed data ({exc})") from exc
        if weights.ndim != 2:
            raise ConfigError(
                f"USE content model: weights of shape {weights.shape}, want classes x dimensions"
            )
        return cls(classes, weights, bias)


@functools.cache
def shipped_model(kind: str = "content") -> UseContentModel:
    """The classifier shipped in ``vocab/use_<kind>.json``: "content" (the content type) or "aspect" (the
    frame: portrait, landscape or square); read once per process."""
    if kind not in KINDS:
        raise ConfigError(f"no shipped USE model {kind!r}; there are {', '.join(KINDS)}")
    return UseContentModel.from_json(load_vocab(f"use_{kind}"))


def softmax_weights(
    x: np.ndarray, y: np.ndarray, classes: int, *, l2: float, steps: int = 600, rate: float = 0.5
) -> np.ndarray:
    """Weights (features x classes) of a softmax regression of class indices ``y`` on the rows of ``x``
    (a bias column is the caller's), by full-batch gradient descent with an L2 penalty."""
    w = np.zeros((x.shape[1], classes))
    target = np.eye(classes)[y]
    for _ in range(steps):
        logits = x @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        w -= rate * (x.T @ (p - target) / len(x) + l2 * w)
    return w


def fit_content_model(
    vectors: np.ndarray, labels: Sequence[str], *, l2: float = 0.05, steps: int = 600, rate: float = 0.5
) -> UseContentModel:
    """Softmax regression of ``labels`` on unit ``vectors`` (rows), by full-batch gradient descent on the
    z-scored embeddings with an L2 penalty (the probe's ``use-logistic``); the z-scoring is folded into the
    returned weights, so a prompt's unit embedding goes in as it is."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2 or len(x) != len(labels):
        raise ConfigError(
            f"fit_content_model: {len(x)} vectors, {len(labels)} labels, {len(classes)} classes"
        )
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    y = np.array([classes.index(label) for label in labels])
    w = softmax_weights(z, y, len(classes), l2=l2, steps=steps, rate=rate)
    scaled = w[:-1] / std[:, None]  # (x - mean) / std @ w  =  x @ (w / std) - (mean / std) @ w
    bias = w[-1] - mean @ scaled
    if not math.isfinite(float(np.abs(scaled).sum())):
        raise ConfigError("fit_content_model: the fit diverged")
    return UseContentModel(classes, scaled.T.copy(), bias)
