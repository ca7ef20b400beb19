"""Training, the registry (promote, rollback, corrupt or mismatched artifacts) and runtime parity."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from apps.inference import (
    CLASSIFIERS,
    ArtifactError,
    ContractMismatch,
    Dataset,
    DatasetError,
    FeatureSchema,
    ModelRegistry,
    NoActiveVersion,
    OnnxPredictor,
    RegistryError,
    SchemaMismatch,
    load_runtime,
    select_providers,
    synthetic_dataset,
    train,
)
from apps.inference.registry import _sha256
from environments.model import Classifier



@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return synthetic_dataset(n_samples=600, n_features=20, seed=1)


@pytest.fixture(scope="module")
def forest(dataset: Dataset):
    return train(dataset, classifier="random_forest", seed=0)


@pytest.fixture(scope="module")
def logistic(dataset: Dataset):
    return train(dataset, classifier="logistic_regression", seed=0)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(f"file://{tmp_path}/models")


# ------------------------------------------------------------------ training


def test_every_configurable_classifier_is_implemented() -> None:
    assert set(get_args(Classifier)) == set(CLASSIFIERS)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_training_is_reproducible_and_learns(dataset: Dataset, name: str) -> None:
    first, second = train(dataset, classifier=name, seed=3), train(dataset, classifier=name, seed=3)
    assert first.metrics == second.metrics
    assert np.array_equal(first.estimator.predict_proba(dataset.X), second.estimator.predict_proba(dataset.X))
    assert first.metrics.accuracy > 0.7 and first.metrics.roc_auc > 0.75 and first.metrics.f1 > 0.7
    assert first.training_data_hash == dataset.content_hash()
    assert first.classifier == name and first.schema == dataset.schema


def test_classifiers_differ_and_unknown_is_refused(forest, logistic, dataset: Dataset) -> None:
    assert type(forest.estimator).__name__ == "RandomForestClassifier"
    assert type(logistic.estimator).__name__ == "Pipeline"
    with pytest.raises(ValueError, match="expected one of .*logistic_regression.*random_forest.*got 'xgboost'"):
        train(dataset, classifier="xgboost")


def test_any_feature_count_trains_and_exports() -> None:
    small = synthetic_dataset(n_samples=200, n_features=7, seed=2)
    trained = train(small, classifier="logistic_regression")
    from apps.inference.registry import ModelArtifact, ModelMetadata  # noqa: F401

    import onnxruntime as ort

    session = ort.InferenceSession(trained.to_onnx(), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [None, 7]


def test_data_hash_changes_with_the_data(dataset: Dataset) -> None:
    X = dataset.X.copy()
    X[0, 0] += 1
    assert Dataset.from_arrays(X, dataset.y).content_hash() != dataset.content_hash()


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros((4, 3), np.float32), np.array([0, 1, 0]), r"y: expected shape \(4,\)"),
        (np.array([[1.0, np.nan], [0, 0]], np.float32), np.array([0, 1]), "X: expected finite numbers, got nan at row 0 column 1"),
        (np.zeros(4, np.float32), np.array([0, 1, 0, 1]), "X: expected a 2-D array"),
    ],
)
def test_bad_datasets_are_refused(X: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        Dataset.from_arrays(X, y)


def test_dataset_schema_must_match() -> None:
    schema = FeatureSchema.numbered(3, [0, 1])
    with pytest.raises(DatasetError, match="expected 3 feature columns"):
        Dataset(X=np.zeros((2, 4), np.float32), y=np.array([0, 1]), schema=schema)
    with pytest.raises(DatasetError, match=r"labels \[7\] are not among"):
        Dataset(X=np.zeros((2, 3), np.float32), y=np.array([0, 7]), schema=schema)
    with pytest.raises(DatasetError, match="at least two classes"):
        Dataset.from_arrays(np.zeros((2, 3)), [1, 1])


# ------------------------------------------------------------------ registry


def test_publish_promote_load(registry: ModelRegistry, forest, dataset: Dataset) -> None:
    assert registry.active_version() is None
    with pytest.raises(NoActiveVersion, match="no version has been promoted"):
        registry.load()
    version = registry.publish(forest)
    assert registry.versions() == [version]
    assert registry.active_version() is None, "publishing does not activate"
    registry.promote(version)
    artifact = registry.load()
    meta = artifact.metadata
    assert (artifact.version, meta.version, meta.classifier) == (version, version, "random_forest")
    assert meta.feature_schema == dataset.schema and meta.metrics == forest.metrics
    assert meta.training_data_hash == dataset.content_hash() and meta.created_at.tzinfo is not None
    assert set(meta.files) == {"model.onnx", "model.pkl"}
    assert np.allclose(artifact.sklearn_model.predict_proba(dataset.X[:5]), forest.estimator.predict_proba(dataset.X[:5]))


def test_promote_and_rollback_walk_the_history(registry: ModelRegistry, forest, logistic) -> None:
    v1, v2, v3 = registry.publish(forest), registry.publish(logistic), registry.publish(forest)
    assert len({v1, v2, v3}) == 3 and registry.versions() == sorted([v1, v2, v3])
    for v in (v1, v2, v3):
        registry.promote(v)
    registry.promote(v3)  # promoting the active version again is a no-op
    assert registry.history() == [v1, v2, v3]
    assert registry.rollback() == v2 and registry.active_version() == v2
    assert registry.load().metadata.classifier == "logistic_regression"
    assert registry.rollback() == v1 and registry.active_version() == v1
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    assert registry.active_version() == v1


def test_unknown_version_is_refused(registry: ModelRegistry, forest) -> None:
    version = registry.publish(forest)
    with pytest.raises(RegistryError, match=f"no model version 'v0-missing'; known versions: .*{version}"):
        registry.promote("v0-missing")


def _corrupt(registry: ModelRegistry, version: str, name: str) -> None:
    path = Path(registry.store.root) / "versions" / version / name  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("model.onnx", r"model.onnx sha256 .* does not match the recorded"),
        ("model.pkl", r"model.pkl sha256 .* does not match the recorded"),
        ("metadata.json", r"metadata.json sha256 .* does not match CHECKSUM"),
    ],
)
def test_corrupt_artifacts_are_refused(registry: ModelRegistry, forest, logistic, name: str, message: str) -> None:
    good, bad = registry.publish(forest), registry.publish(logistic)
    registry.promote(good)
    _corrupt(registry, bad, name)
    with pytest.raises(ArtifactError, match=message) as err:
        registry.promote(bad)
    assert bad in str(err.value) and registry.uri in str(err.value)
    assert registry.active_version() == good, "a corrupt version is never promoted"


def test_rollback_refuses_a_corrupted_previous_version(registry: ModelRegistry, forest) -> None:
    v1, v2 = registry.publish(forest), registry.publish(forest)
    registry.promote(v1)
    registry.promote(v2)
    _corrupt(registry, v1, "model.onnx")
    with pytest.raises(ArtifactError, match="model.onnx"):
        registry.rollback()
    assert registry.active_version() == v2


def test_incomplete_version_is_invisible_and_refused(registry: ModelRegistry, forest) -> None:
    version = registry.publish(forest)
    registry.store.delete(f"versions/{version}/CHECKSUM")
    assert registry.versions() == []
    with pytest.raises(ArtifactError, match="CHECKSUM is missing"):
        registry.load(version)


def _rewrite_metadata(registry: ModelRegistry, version: str, edit) -> None:
    """Tamper consistently: the checksums match, only the content disagrees."""
    key = f"versions/{version}/metadata.json"
    meta = json.loads(registry.store.get_bytes(key))
    edit(meta)
    raw = json.dumps(meta).encode()
    registry.store.put_bytes(key, raw)
    registry.store.put_bytes(f"versions/{version}/CHECKSUM", f"{_sha256(raw)}\n".encode())


def test_graph_disagreeing_with_schema_is_refused(registry: ModelRegistry, forest) -> None:
    version = registry.publish(forest)
    _rewrite_metadata(registry, version, lambda m: m["feature_schema"].update(features=[f"x{i}" for i in range(19)]))
    with pytest.raises(SchemaMismatch, match=r"takes features\[None, 20\] .* needs \[None, 19\]"):
        registry.load(version)


def test_metadata_of_another_version_is_refused(registry: ModelRegistry, forest) -> None:
    version = registry.publish(forest)
    _rewrite_metadata(registry, version, lambda m: m.update(version="v-other"))
    with pytest.raises(ArtifactError, match="says version 'v-other'"):
        registry.load(version)


def test_expected_schema_mismatch_is_refused(registry: ModelRegistry, forest) -> None:
    version = registry.publish(forest)
    registry.load(version, expected_schema=forest.schema)
    with pytest.raises(SchemaMismatch, match="differs from the expected 21 features"):
        registry.load(version, expected_schema=FeatureSchema.numbered(21, [0, 1]))


def test_a_promotion_that_breaks_the_familys_contract_is_refused(registry: ModelRegistry, forest) -> None:
    registry.declare(forest.schema)
    registry.promote(good := registry.publish(forest))
    narrow = train(synthetic_dataset(n_samples=300, n_features=17, seed=2), classifier="logistic_regression")
    wrong = registry.publish(narrow)
    with pytest.raises(ContractMismatch) as info:
        registry.promote(wrong)
    message = str(info.value)
    assert f"version {wrong!r} takes 17 features [f0, f1, f2, ...]" in message
    assert "the family's contract is 20 features [f0, f1, f2, ...], classes [0, 1]" in message
    assert registry.active_version() == good  # nothing changed


def test_a_familys_contract_is_declared_once_and_kept(registry: ModelRegistry, forest) -> None:
    assert registry.contract() is None
    assert registry.declare(forest.schema) == forest.schema == registry.contract()
    assert registry.declare(forest.schema) == forest.schema  # idempotent
    with pytest.raises(ContractMismatch, match="contract is 20 features .* not 17 features"):
        registry.declare(FeatureSchema.numbered(17, [0, 1]))
    assert registry.contract() == forest.schema


def test_rollback_onto_a_version_of_another_schema_is_refused(registry: ModelRegistry, forest) -> None:
    narrow = train(synthetic_dataset(n_samples=300, n_features=17, seed=2), classifier="logistic_regression")
    registry.promote(registry.publish(narrow))  # before the family had a contract
    registry.declare(forest.schema)
    registry.promote(registry.publish(forest))
    with pytest.raises(ContractMismatch, match="takes 17 features"):
        registry.rollback()


# ------------------------------------------------------------------ runtimes


@pytest.mark.parametrize("which", ["forest", "logistic"])
def test_onnx_and_sklearn_agree(registry: ModelRegistry, request: pytest.FixtureRequest, which: str) -> None:
    trained = request.getfixturevalue(which)
    registry.promote(registry.publish(trained))
    artifact = registry.load()
    onnx_rt, sk_rt = load_runtime(artifact), load_runtime(artifact, prefer="sklearn")
    assert (onnx_rt.backend, sk_rt.backend) == ("onnxruntime", "sklearn")
    X = synthetic_dataset(n_samples=500, n_features=20, seed=9).X
    p_onnx, p_sk = onnx_rt.predict_proba(X), sk_rt.predict_proba(X)
    assert p_onnx.shape == p_sk.shape == (500, 2)
    np.testing.assert_allclose(p_onnx, p_sk, atol=1e-5)
    decided = np.abs(p_sk[:, 1] - p_sk[:, 0]) > 1e-4  # exact 50/50 forest votes may tip either way in float32
    assert np.array_equal(p_onnx.argmax(axis=1)[decided], p_sk.argmax(axis=1)[decided])


def test_provider_selection() -> None:
    assert select_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert select_providers(["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_runtime_reports_cpu_when_cuda_is_absent(registry: ModelRegistry, forest) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback to CPU cannot be observed")
    registry.promote(registry.publish(forest))
    auto = load_runtime(registry.load())
    asked_for_gpu = OnnxPredictor(registry.load(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert isinstance(auto, OnnxPredictor)
    assert (auto.device, auto.providers) == ("cpu", ["CPUExecutionProvider"])
    assert (asked_for_gpu.device, asked_for_gpu.providers) == ("cpu", ["CPUExecutionProvider"])


def test_unloadable_onnx_falls_back_to_sklearn(registry: ModelRegistry, logistic) -> None:
    registry.promote(registry.publish(logistic))
    artifact = dataclasses.replace(registry.load(), onnx_bytes=b"not an onnx graph")
    predictor = load_runtime(artifact)
    assert (predictor.backend, predictor.device) == ("sklearn", "cpu")
    assert predictor.predict_proba(np.zeros((1, 20), np.float32)).shape == (1, 2)
