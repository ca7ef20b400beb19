"""Featurisation of redacted case text: the 584-dimension vector of the PCC seed.

384 dimensions of MiniLM sentence embedding + 200 of TF-IDF, concatenated in that order.

    >>> from apps.features import Featurizer
    >>> vectors = Featurizer.default().transform(["customer asked to delete their account"])
    >>> vectors.shape
    (1, 584)
"""

from __future__ import annotations

from apps.features.embedder import (
    EMBEDDING_DIM,
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    load_embedder,
)
from apps.features.exceptions import EmbedderUnavailable, FeatureError
from apps.features.tfidf import TFIDF_DIM, TfidfFeaturizer
from apps.features.vector import FEATURE_DIM, Featurizer, validate_vectors

__all__ = [
    "EMBEDDING_DIM",
    "FEATURE_DIM",
    "TFIDF_DIM",
    "Embedder",
    "EmbedderUnavailable",
    "FeatureError",
    "Featurizer",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "TfidfFeaturizer",
    "load_embedder",
    "validate_vectors",
]
