"""The 584-dimension case vector: MiniLM (384) followed by TF-IDF (200), and its validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apps.features.embedder import EMBEDDING_DIM, Embedder, EmbedderKind, load_embedder
from apps.features.exceptions import FeatureError
from apps.features.tfidf import TFIDF_DIM, TfidfFeaturizer

FEATURE_DIM = EMBEDDING_DIM + TFIDF_DIM  # 584
# Both blocks are L2-normalised (or all zero for an empty text), so each has norm 0 or 1.
_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Featurizer:
    embedder: Embedder
    tfidf: TfidfFeaturizer

    @classmethod
    def default(cls, embedder: EmbedderKind = "auto") -> Featurizer:
        return cls(load_embedder(embedder), TfidfFeaturizer.reference())

    @property
    def feature_names(self) -> list[str]:
        """Names a model's schema records: a model trained on other embeddings or vocabulary is refused."""
        return [f"{self.embedder.name}:{i}" for i in range(EMBEDDING_DIM)] + self.tfidf.feature_names

    def transform(self, texts: list[str]) -> np.ndarray:
        """The (n, 584) float32 matrix; each distinct text is featurised once (cases repeat often)."""
        if not texts:
            return np.zeros((0, FEATURE_DIM), np.float32)
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        distinct = [str(t) for t in unique]
        block = np.hstack([self.embedder.embed(distinct), self.tfidf.transform(distinct)]).astype(np.float32, copy=False)
        return block[inverse.reshape(-1)]


def validate_vectors(vectors: np.ndarray) -> np.ndarray:
    """Per row, the reason it is not a valid 584 vector, or "" when it is (vectorised).

    Checks the width, finiteness and that each block has L2 norm 1 (or 0: an empty text).
    A row's squared norm is finite exactly when all its values are (NaN and inf propagate), so
    one pass per block over the matrix checks both, with no full-size temporaries.
    """
    if vectors.ndim != 2 or vectors.shape[1] != FEATURE_DIM:
        raise FeatureError(f"feature matrix: expected shape (n, {FEATURE_DIM}), got {vectors.shape}")
    reasons = np.full(len(vectors), "", dtype=object)
    with np.errstate(over="ignore", invalid="ignore"):
        blocks = {name: np.einsum("ij,ij->i", b, b)
                  for name, b in (("embedding", vectors[:, :EMBEDDING_DIM]), ("tfidf", vectors[:, EMBEDDING_DIM:]))}
    finite = np.isfinite(blocks["embedding"]) & np.isfinite(blocks["tfidf"])
    reasons[~finite] = "features contain NaN or infinity"
    for name, sq in blocks.items():
        norm = np.sqrt(np.where(finite, sq, 0.0))
        bad = finite & (np.abs(norm - 1.0) > _NORM_TOLERANCE) & (norm > _NORM_TOLERANCE)
        for i in np.flatnonzero(bad & (reasons == "")):
            reasons[i] = f"{name} block L2 norm is {norm[i]:.4f}, expected 1 (or 0 for empty text)"
    return reasons
