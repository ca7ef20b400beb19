"""The object store: the file backend fully, the S3 backend against a real S3-compatible server."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from apps.storage import FileStore, ObjectNotFound, S3Store, StorageError, open_store
from tests.unit.conftest import S3Server



@pytest.fixture
def file_store(tmp_path: Path) -> FileStore:
    store = open_store(f"file://{tmp_path}/store")
    assert isinstance(store, FileStore)
    return store


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.process)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "file":
        return open_store(f"file://{tmp_path}/store")
    return request.getfixturevalue("s3_store")


def test_round_trip_list_and_delete(store) -> None:
    store.put_bytes("models/v1/model.onnx", b"\x00\x01binary")
    store.put_bytes("models/v2/model.onnx", b"two")
    store.put_bytes("data/x.parquet", b"x")
    assert store.get_bytes("models/v1/model.onnx") == b"\x00\x01binary"
    assert store.exists("models/v2/model.onnx")
    assert not store.exists("models/v3/model.onnx")
    assert store.list("models/") == ["models/v1/model.onnx", "models/v2/model.onnx"]
    assert store.list() == ["data/x.parquet", "models/v1/model.onnx", "models/v2/model.onnx"]
    store.put_bytes("models/v2/model.onnx", b"overwritten")
    assert store.get_bytes("models/v2/model.onnx") == b"overwritten"
    store.delete("models/v1/model.onnx")
    assert store.list("models/") == ["models/v2/model.onnx"]
    store.delete("models/v1/model.onnx")  # deleting twice is not an error


def test_missing_key_names_uri_and_key(store) -> None:
    with pytest.raises(ObjectNotFound) as err:
        store.get_bytes("nope/missing.json")
    assert store.uri in str(err.value) and "nope/missing.json" in str(err.value)
    assert isinstance(err.value, StorageError) and isinstance(err.value, KeyError)


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../b", "a//b", "./a"])
def test_unsafe_keys_are_refused(file_store: FileStore, key: str) -> None:
    with pytest.raises(StorageError, match="relative key"):
        file_store.put_bytes(key, b"x")
    assert file_store.list() == []


def test_empty_store_lists_nothing(tmp_path: Path) -> None:
    assert open_store(f"file://{tmp_path}/never-created").list() == []


def test_writes_are_atomic_for_concurrent_readers(file_store: FileStore) -> None:
    """A reader racing a writer sees a whole old object or a whole new one, never a torn one."""
    old, new = b"a" * 1_000_000, b"b" * 1_000_000
    file_store.put_bytes("big", old)
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = file_store.get_bytes("big")
            seen.add(data[:1] + data[-1:] + str(len(data)).encode())

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(30):
        file_store.put_bytes("big", new if i % 2 == 0 else old)
    stop.set()
    thread.join()
    assert seen <= {b"aa1000000", b"bb1000000"}
    assert file_store.list() == ["big"], "no temporary file is left behind or listed"


def test_objects_are_readable_by_other_users(file_store: FileStore) -> None:
    file_store.put_bytes("models/v1/model.onnx", b"x")
    assert (file_store.root / "models" / "v1" / "model.onnx").stat().st_mode & 0o777 == 0o644


def test_write_failure_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where a directory is expected")
    store = open_store(f"file://{tmp_path}/file")
    with pytest.raises(StorageError, match="cannot write") as err:
        store.put_bytes("k/v", b"x")
    assert "k/v" in str(err.value)


def test_relative_file_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("file://rel/dir").put_bytes("a", b"1")
    assert (tmp_path / "rel" / "dir" / "a").read_bytes() == b"1"


@pytest.mark.parametrize(
    ("uri", "message"),
    [("gs://bucket/x", "unsupported scheme 'gs'"), ("s3:///nobucket", "no bucket"), ("file://", "no path")],
)
def test_bad_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        open_store(uri)


def test_s3_keys_live_under_the_prefix(s3_store: S3Store) -> None:
    s3_store.put_bytes("a/b.json", b"{}")
    raw = s3_store._client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    assert [o["Key"] for o in raw] == ["prefix/a/b.json"]
    assert s3_store.list() == ["a/b.json"]


def test_s3_uri_parsing() -> None:
    store = open_store("s3://ml-models/team/a", endpoint_url="http://127.0.0.1:9")
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == ("ml-models", "team/a")


def test_s3_missing_bucket_is_a_clear_error(s3_server: S3Server) -> None:
    bucket = f"mlops-missing-{uuid.uuid4().hex[:8]}"
    store = S3Store(bucket, "", uri=f"s3://{bucket}", client=s3_server.client())
    with pytest.raises(StorageError, match=f"s3://{bucket} key 'k': cannot write: NoSuchBucket.*create the bucket"):
        store.put_bytes("k", b"v")


def test_model_registry_on_s3(s3_store: S3Store) -> None:
    from apps.inference import ArtifactError, ModelRegistry, load_runtime, synthetic_dataset, train

    registry = ModelRegistry(s3_store.uri, store=s3_store)
    trained = train(synthetic_dataset(n_samples=200, n_features=5), classifier="logistic_regression")
    v1, v2 = registry.publish(trained), registry.publish(trained)
    registry.promote(v1)
    registry.promote(v2)
    assert registry.versions() == sorted([v1, v2]) and registry.active_version() == v2
    assert load_runtime(registry.load()).predict_proba(np.zeros((2, 5))).shape == (2, 2)
    s3_store.put_bytes(f"versions/{v1}/model.onnx", b"truncated")
    with pytest.raises(ArtifactError, match="model.onnx sha256"):
        registry.rollback()
    assert registry.active_version() == v2


def test_each_s3_store_reads_the_credentials_in_force_when_it_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that talks to two stores with different keys (a test session: Docker's MinIO, then
    a cluster's) must not sign with the first keys boto3's default session happened to cache."""
    from apps.storage import open_store

    keys = []
    for access in ("first-key", "second-key"):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"{access}-secret")
        store = open_store("s3://bucket/prefix", endpoint_url="http://127.0.0.1:9")
        assert isinstance(store, S3Store)
        keys.append(store._client._request_signer._credentials.access_key)  # what its requests are signed with
    assert keys == ["first-key", "second-key"]


def test_a_bug_of_ours_is_not_reported_as_an_endpoint_problem() -> None:
    """A programming error (here a client that is not one) keeps its own type and traceback."""
    store = S3Store("bucket", "", uri="s3://bucket", client=object())
    with pytest.raises(AttributeError):
        store.put_bytes("a.json", b"{}")
    with pytest.raises(AttributeError):
        store.exists("a.json")
