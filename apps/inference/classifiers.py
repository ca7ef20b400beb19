"""The swappable classifier interface: a name in the environment picks the estimator.

Adding one is a factory here plus its name in `environments.model.Classifier`; everything
downstream (training, ONNX export, registry, runtime) works on any scikit-learn classifier
that skl2onnx converts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

# scikit-learn is imported inside the factories: the serving path (ONNX Runtime) never loads it.


class Classifier(Protocol):
    """What training needs of an estimator (scikit-learn's classifier protocol)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Classifier: ...
    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def random_forest(seed: int) -> Classifier:
    from sklearn.ensemble import RandomForestClassifier

    # 100 trees: the inference seed's N_ESTIMATORS and the benchmark's reference model.
    return RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=1, random_state=seed)


def logistic_regression(seed: int) -> Classifier:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000, random_state=seed))])


CLASSIFIERS: dict[str, Callable[[int], Classifier]] = {
    "random_forest": random_forest,
    "logistic_regression": logistic_regression,
}


def make_classifier(name: str, *, seed: int) -> Classifier:
    try:
        factory = CLASSIFIERS[name]
    except KeyError:
        raise ValueError(f"classifier: expected one of {sorted(CLASSIFIERS)}, got {name!r}") from None
    return factory(seed)
