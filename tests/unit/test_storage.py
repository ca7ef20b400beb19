"""The object store: the file backend fully, the S3 backend against a real S3-compatible server."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest

from apps.storage import FileStore, ObjectNotFound, S3Store, StorageError, open_store

pytestmark = pytest.mark.unit


@pytest.fixture
def file_store(tmp_path: Path) -> FileStore:
    store = open_store(f"file://{tmp_path}/store")
    assert isinstance(store, FileStore)
    return store


def _s3_endpoint() -> str:
    endpoint = os.environ.get("MLOPS_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip(
            "no S3-compatible server here: set MLOPS_TEST_S3_ENDPOINT (and AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY) to a MinIO the containers harness starts; the e2e suite covers S3"
        )
    return endpoint


@pytest.fixture
def s3_store() -> S3Store:
    endpoint = _s3_endpoint()
    bucket = f"mlops-test-{uuid.uuid4().hex[:12]}"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/prefix", endpoint_url=endpoint)
    assert isinstance(store, S3Store)
    yield store
    for key in store.list():
        store.delete(key)
    client.delete_bucket(Bucket=bucket)


@pytest.fixture(params=["file", "s3"])
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


def test_s3_missing_bucket_is_a_clear_error() -> None:
    endpoint = _s3_endpoint()
    store = open_store(f"s3://mlops-missing-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        store.put_bytes("k", b"v")
