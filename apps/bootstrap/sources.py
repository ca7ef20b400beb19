"""The training sources a family's first model comes from (environments: models.<family>.training)."""

from __future__ import annotations

import numpy as np

from apps.inference import Dataset
from environments.model import ModelContract


def training_set(contract: ModelContract) -> Dataset:
    """`rows` labelled rows of the declared source, seeded: the same contract gives the same data."""
    training = contract.training
    if training.source == "synthetic":
        from apps.inference import synthetic_dataset

        names = contract.feature_names
        assert names is not None  # the environment model requires them for this source
        data = synthetic_dataset(n_samples=training.rows, n_features=len(names), seed=training.seed)
        return Dataset.from_arrays(data.X, data.y, features=names)
    if training.source == "fraud_transactions":
        from apps.fraud.records import FEATURE_NAMES
        from apps.fraud.stages import featurize, synthetic_transactions

        txs = synthetic_transactions(training.rows, np.random.default_rng(training.seed))
        labels = [int(bool(t.is_fraud)) for t in txs]
        return Dataset.from_arrays(featurize(txs), labels, features=list(FEATURE_NAMES))
    from apps.features import Featurizer, TfidfFeaturizer
    from apps.features.corpus import synthetic_cases
    from apps.features.embedder import load_embedder

    assert training.embedder is not None  # required for pcc_cases by the environment model
    featurizer = Featurizer(load_embedder(training.embedder), TfidfFeaturizer.reference())
    texts, cases = synthetic_cases(training.rows, seed=training.seed)
    return Dataset.from_arrays(featurizer.transform(texts), cases, features=featurizer.feature_names)
