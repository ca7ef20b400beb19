"""A PCC model from synthetic labelled cases: what sample runs, tests and demos score with."""

from __future__ import annotations

import structlog

from apps.features import Featurizer
from apps.features.corpus import synthetic_cases

log = structlog.get_logger(__name__)


def train_sample_model(registry_uri: str, *, featurizer: Featurizer, rows: int = 2000, seed: int = 0,
                       classifier: str = "logistic_regression", endpoint_url: str | None = None,
                       promote: bool = True) -> str:
    """Featurise `rows` synthetic cases, train, publish (and promote) a version; returns it.

    The schema records the featurizer's feature names, so a run that computes vectors with a
    different embedder refuses the model instead of scoring garbage.
    """
    from apps.inference import Dataset, ModelRegistry, train

    texts, labels = synthetic_cases(rows, seed=seed)
    dataset = Dataset.from_arrays(featurizer.transform(texts), labels, features=featurizer.feature_names)
    trained = train(dataset, classifier=classifier, seed=seed)
    registry = ModelRegistry(registry_uri, endpoint_url=endpoint_url)
    version = registry.publish(trained)
    if promote:
        registry.promote(version)
    log.info("sample_model_trained", version=version, promoted=promote, embedder=featurizer.embedder.name,
             **trained.metrics.model_dump())
    return version
