"""Reproducible training: a dataset and a classifier name in, a fitted model with its metrics out.

    >>> from apps.inference import synthetic_dataset, train
    >>> trained = train(synthetic_dataset(n_samples=400), classifier="logistic_regression", seed=0)
    >>> sorted(trained.metrics.model_dump())[:3]
    ['accuracy', 'f1', 'n_test']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from apps.inference.classifiers import make_classifier
from apps.inference.dataset import Dataset, FeatureSchema
from apps.inference.errors import DatasetError

ONNX_INPUT = "features"
ONNX_PROBABILITIES = "probabilities"


class Metrics(BaseModel):
    """Held-out metrics of one training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: float = Field(ge=0, le=1)
    roc_auc: float = Field(ge=0, le=1)
    f1: float = Field(ge=0, le=1)
    n_train: int = Field(ge=1)
    n_test: int = Field(ge=1)


@dataclass(frozen=True)
class TrainedModel:
    """A fitted estimator with everything the registry records about it."""

    estimator: Any
    classifier: str
    schema: FeatureSchema
    metrics: Metrics
    training_data_hash: str
    seed: int

    def to_onnx(self) -> bytes:
        """The ONNX graph: float32 input `features` [N, n_features], output `probabilities` [N, n_classes]."""
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        final = self.estimator.steps[-1][1] if hasattr(self.estimator, "steps") else self.estimator
        onx = convert_sklearn(
            self.estimator,
            initial_types=[(ONNX_INPUT, FloatTensorType([None, self.schema.n_features]))],
            # A plain probability tensor rather than a list of dicts: the runtime slices it directly.
            options={id(final): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        return onx.SerializeToString()


def train(dataset: Dataset, *, classifier: str = "random_forest", seed: int = 0, test_fraction: float = 0.25) -> TrainedModel:
    """Fit `classifier` on a seeded split of `dataset`; the same inputs give the same model and metrics."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number between 0 and 1, got {test_fraction}")
    counts = np.bincount(np.searchsorted(dataset.schema.classes, dataset.y))
    stratify = dataset.y if counts.min() >= 2 else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            dataset.X, dataset.y, test_size=test_fraction, random_state=seed, stratify=stratify
        )
    except ValueError as e:
        raise DatasetError(f"dataset of {len(dataset)} rows cannot be split for training: {e}") from e
    if len(np.unique(y_train)) < 2:
        raise DatasetError("the training split holds a single class; provide more rows of each class")
    estimator = make_classifier(classifier, seed=seed)
    estimator.fit(X_train, y_train)
    return TrainedModel(
        estimator=estimator,
        classifier=classifier,
        schema=dataset.schema,
        metrics=evaluate(estimator, X_test, y_test, classes=dataset.schema.classes, n_train=len(y_train)),
        training_data_hash=dataset.content_hash(),
        seed=seed,
    )


def evaluate(estimator: Any, X: np.ndarray, y: np.ndarray, *, classes: list[int], n_train: int) -> Metrics:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    proba = estimator.predict_proba(X)
    predicted = np.asarray(classes)[proba.argmax(axis=1)]
    binary = len(classes) == 2
    if len(np.unique(y)) < 2:
        auc = float("nan")
    elif binary:
        auc = roc_auc_score(y, proba[:, 1])
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    return Metrics(
        accuracy=float(accuracy_score(y, predicted)),
        # A single-class test split has no ROC curve: recorded as 0.5 (chance), never NaN in JSON.
        roc_auc=0.5 if np.isnan(auc) else float(auc),
        f1=float(f1_score(y, predicted, average="binary" if binary else "macro", pos_label=classes[-1])),
        n_train=n_train,
        n_test=len(y),
    )
