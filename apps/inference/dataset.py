"""A typed, validated dataset and the feature schema every model version records.

    >>> ds = synthetic_dataset(n_samples=200, n_features=20, seed=0)
    >>> ds.schema.n_features, ds.X.dtype.name
    (20, 'float32')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from apps.inference.errors import DatasetError


class FeatureSchema(BaseModel):
    """The names and order of the input features and the class labels: a model's contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: list[str] = Field(min_length=1)
    classes: list[int] = Field(min_length=2)
    dtype: str = "float32"

    @model_validator(mode="after")
    def _unique(self) -> FeatureSchema:
        if len(set(self.features)) != len(self.features):
            raise ValueError("feature names must be unique")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class labels must be unique")
        return self

    @property
    def n_features(self) -> int:
        return len(self.features)

    @classmethod
    def numbered(cls, n_features: int, classes: list[int]) -> FeatureSchema:
        return cls(features=[f"f{i}" for i in range(n_features)], classes=classes)


@dataclass(frozen=True)
class Dataset:
    """Features `X` (n_samples x n_features, float32), integer labels `y`, and their schema."""

    X: np.ndarray
    y: np.ndarray
    schema: FeatureSchema

    def __post_init__(self) -> None:
        X, y = self.X, self.y
        if X.ndim != 2:
            raise DatasetError(f"X: expected a 2-D array (samples x features), got {X.ndim}-D shape {X.shape}")
        if X.shape[1] != self.schema.n_features:
            raise DatasetError(
                f"X: expected {self.schema.n_features} feature columns as the schema says, got {X.shape[1]}"
            )
        if y.shape != (X.shape[0],):
            raise DatasetError(f"y: expected shape ({X.shape[0]},) to match X, got {y.shape}")
        if X.dtype != np.float32:
            raise DatasetError(f"X: expected dtype float32, got {X.dtype}; use Dataset.from_arrays to convert")
        if not np.isfinite(X).all():
            bad = np.argwhere(~np.isfinite(X))[0]
            raise DatasetError(f"X: expected finite numbers, got {X[bad[0], bad[1]]} at row {bad[0]} column {bad[1]}")
        unknown = sorted(set(np.unique(y).tolist()) - set(self.schema.classes))
        if unknown:
            raise DatasetError(f"y: labels {unknown} are not among the schema's classes {self.schema.classes}")

    @classmethod
    def from_arrays(cls, X: object, y: object, *, features: list[str] | None = None) -> Dataset:
        X_ = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        y_ = np.asarray(y).astype(np.int64)
        if X_.ndim != 2 or X_.shape[1] == 0:
            raise DatasetError(f"X: expected a 2-D array (samples x features), got shape {X_.shape}")
        n_features = X_.shape[1]
        classes = sorted(np.unique(y_).tolist())
        if len(classes) < 2:
            raise DatasetError(f"y: expected at least two classes to learn from, got {classes}")
        schema = FeatureSchema(features=features, classes=classes) if features else FeatureSchema.numbered(n_features, classes)
        return cls(X=X_, y=y_, schema=schema)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def content_hash(self) -> str:
        """sha256 over the schema, the features and the labels: the training data's identity."""
        h = hashlib.sha256()
        h.update(self.schema.model_dump_json().encode())
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update(np.ascontiguousarray(self.y, dtype=np.int64).tobytes())
        return h.hexdigest()


# What `mlops apps train` and the API benchmark use: a forest as big as one a user would deploy
# (50,000 rows grow ~8x the nodes of 2,000). Tests seed smaller models to stay fast.
DEPLOY_SAMPLES = 50_000


def synthetic_dataset(*, n_samples: int = 2000, n_features: int = 20, seed: int = 0) -> Dataset:
    """A reproducible binary classification problem (the inference seed's 20-feature shape)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=max(2, n_features // 2),
        n_redundant=min(2, max(0, n_features - max(2, n_features // 2))),
        random_state=seed,
    )
    return Dataset.from_arrays(X, y)
