"""A model family's declared contract (environments: `models.<family>`) as the schema its registry keeps."""

from __future__ import annotations

from apps.inference.dataset import FeatureSchema
from environments.model import ModelContract


def declared_schema(contract: ModelContract) -> FeatureSchema | None:
    """The family's schema as declared; None where its training source defines the features
    (pcc_cases: the featurizer's), and the registry pins them with the first model."""
    names = contract.feature_names
    return None if names is None else FeatureSchema(features=names, classes=list(contract.classes))
