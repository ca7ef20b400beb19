"""TF-IDF features (scikit-learn) with a fixed width of 200, savable as JSON.

A vocabulary smaller than 200 terms (a tiny fitting corpus) leaves the trailing columns zero,
so the vector width never depends on the corpus.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from apps.features.corpus import synthetic_cases
from apps.features.exceptions import FeatureError

TFIDF_DIM = 200
REFERENCE_SEED = 20250101
_PARAMS = {"max_features": TFIDF_DIM, "ngram_range": (1, 2), "sublinear_tf": True, "norm": "l2",
           "lowercase": True, "dtype": np.float32}


class TfidfFeaturizer:
    """Fit once on a corpus; transform any text to exactly 200 float32 columns."""

    dim = TFIDF_DIM

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self._vec = vectorizer

    @classmethod
    def fit(cls, corpus: list[str]) -> TfidfFeaturizer:
        if not corpus:
            raise FeatureError("TF-IDF needs a non-empty corpus to fit, got 0 texts")
        return cls(TfidfVectorizer(**_PARAMS).fit(corpus))

    @classmethod
    @lru_cache(maxsize=1)
    def reference(cls) -> TfidfFeaturizer:
        """Fitted on the built-in synthetic corpus: the same vocabulary on every machine."""
        texts, _ = synthetic_cases(5000, seed=REFERENCE_SEED)
        return cls.fit(texts)

    def transform(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if texts:
            m = self._vec.transform(texts).toarray()
            out[:, : m.shape[1]] = m
        return out

    @property
    def feature_names(self) -> list[str]:
        terms = sorted(self._vec.vocabulary_, key=self._vec.vocabulary_.__getitem__)
        return [f"tfidf:{t}" for t in terms] + [f"tfidf:_unused{i}" for i in range(len(terms), self.dim)]

    def to_json(self) -> str:
        vocab = {term: int(i) for term, i in self._vec.vocabulary_.items()}
        return json.dumps({"vocabulary": vocab, "idf": [float(x) for x in self._vec.idf_]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TfidfFeaturizer:
        try:
            data = json.loads(text)
            vocab, idf = data["vocabulary"], np.asarray(data["idf"], np.float64)
        except (ValueError, KeyError, TypeError) as e:
            raise FeatureError(f"TF-IDF JSON: expected {{'vocabulary': {{term: index}}, 'idf': [...]}}, got error {e}") from e
        if len(vocab) != len(idf) or len(vocab) > TFIDF_DIM:
            raise FeatureError(f"TF-IDF JSON: {len(vocab)} terms and {len(idf)} idf weights; expected equal and <= {TFIDF_DIM}")
        params = {k: v for k, v in _PARAMS.items() if k != "max_features"}
        vec = TfidfVectorizer(vocabulary=vocab, **params)
        vec.fit(list(vocab))  # sets up the fixed vocabulary; the idf is replaced just below
        vec.idf_ = idf
        return cls(vec)
