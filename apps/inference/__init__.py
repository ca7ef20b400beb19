"""The inference core: typed datasets, swappable classifiers, a verified model registry, runtimes."""

from apps.inference.classifiers import CLASSIFIERS, make_classifier
from apps.inference.dataset import Dataset, FeatureSchema, synthetic_dataset
from apps.inference.errors import (
    ArtifactError,
    ContractMismatch,
    DatasetError,
    InferenceError,
    NoActiveVersion,
    RegistryError,
    RuntimeUnavailable,
    SchemaMismatch,
)
from apps.inference.registry import ModelArtifact, ModelMetadata, ModelRegistry
from apps.inference.runtime import OnnxPredictor, Predictor, SklearnPredictor, load_runtime, select_providers
from apps.inference.training import Metrics, TrainedModel, train

__all__ = [
    "CLASSIFIERS", "ArtifactError", "ContractMismatch", "Dataset", "DatasetError", "FeatureSchema", "InferenceError", "Metrics",
    "ModelArtifact", "ModelMetadata", "ModelRegistry", "NoActiveVersion", "OnnxPredictor", "Predictor",
    "RegistryError", "RuntimeUnavailable", "SchemaMismatch", "SklearnPredictor", "TrainedModel",
    "load_runtime", "make_classifier", "select_providers", "synthetic_dataset", "train",
]
