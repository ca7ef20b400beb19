"""Object storage behind one small interface: a local directory (`file://`) or S3 (`s3://`).

Every app that keeps data or models goes through `open_store`, so switching an environment
from a local directory to MinIO or AWS S3 is a change of URI, never of code.

    >>> store = open_store("file:///tmp/example-store")
    >>> store.put_bytes("models/v1/meta.json", b"{}")
    >>> store.get_bytes("models/v1/meta.json")
    b'{}'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse


class StorageError(RuntimeError):
    """A store operation failed; the message names the store URI, the key and what to do."""

    def __init__(self, message: str, *, uri: str, key: str | None = None) -> None:
        where = f"{uri} key {key!r}" if key is not None else uri
        super().__init__(f"{where}: {message}")
        self.uri = uri
        self.key = key


class ObjectNotFound(StorageError, KeyError):
    """The key does not exist in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@runtime_checkable
class ObjectStore(Protocol):
    uri: str

    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...


def _clean_key(uri: str, key: str) -> str:
    """Keys are relative POSIX paths; `..`, absolute paths and empty parts are refused."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("..", ".", "") for part in key.split("/")):
        raise StorageError(
            "expected a relative key like 'models/v1/model.onnx' without '.', '..', empty parts "
            "or a leading '/'",
            uri=uri,
            key=key,
        )
    return key


class FileStore:
    """A directory on a local or mounted filesystem; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path, *, uri: str) -> None:
        self.root = root
        self.uri = uri

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_clean_key(self.uri, key).split("/"))

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Same directory, so the rename is atomic: a reader sees the old object or the new one.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                # mkstemp makes 0600 files; objects are read by other users too (a pod's uid 10001).
                os.fchmod(fd, 0o644)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            raise StorageError(f"cannot write ({e.strerror or e}); check the directory is writable", uri=self.uri, key=key) from e

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound("no such object", uri=self.uri, key=key) from None
        except OSError as e:
            raise StorageError(f"cannot read ({e.strerror or e})", uri=self.uri, key=key) from e

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if not path.is_file() or path.name.startswith("."):
                continue  # hidden files are in-flight temporaries of put_bytes
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"cannot delete ({e.strerror or e})", uri=self.uri, key=key) from e


class S3Store:
    """A bucket and prefix on S3 or an S3-compatible server (MinIO) given by `endpoint_url`."""

    def __init__(self, bucket: str, prefix: str, *, uri: str, endpoint_url: str | None = None, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = uri
        if client is None:
            import boto3  # imported lazily: file:// users never pay for botocore
            from botocore.config import Config

            # A session per store: credentials are resolved when the store opens, not once per
            # process (boto3's default session caches the first keys it found for every later store).
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
            )
        self._client = client

    def _full(self, key: str) -> str:
        key = _clean_key(self.uri, key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, action: str, key: str | None, e: Exception) -> StorageError:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound("no such object", uri=self.uri, key=key)
        hint = {
            "NoSuchBucket": "create the bucket first",
            "AccessDenied": "check the credentials and the bucket policy",
            "InvalidAccessKeyId": "check AWS_ACCESS_KEY_ID / the pod identity",
        }.get(code, "check the endpoint URL and credentials")
        return StorageError(f"cannot {action}: {code}: {e}; {hint}", uri=self.uri, key=key)

    @contextmanager
    def _calling_s3(self, action: str, key: str | None) -> Iterator[None]:
        """S3's own errors (an answer, or no connection) become StorageErrors naming the object;
        anything else is a bug of ours and keeps its traceback."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError) as e:
            raise self._error(action, key, e) from e

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._full(key)
        with self._calling_s3("write", key):
            self._client.put_object(Bucket=self.bucket, Key=full, Body=data)

    def get_bytes(self, key: str) -> bytes:
        full = self._full(key)
        with self._calling_s3("read", key):
            return self._client.get_object(Bucket=self.bucket, Key=full)["Body"].read()

    def exists(self, key: str) -> bool:
        full = self._full(key)
        try:
            with self._calling_s3("check", key):
                self._client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._calling_s3("list", prefix or None):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                keys.extend(obj["Key"][len(base) :] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        full = self._full(key)
        with self._calling_s3("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=full)


def open_store(uri: str, *, endpoint_url: str | None = None) -> ObjectStore:
    """Open `file:///abs/dir` (or `file://relative/dir`) or `s3://bucket/prefix`."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        raw = unquote(parsed.netloc + parsed.path)
        if not raw:
            raise StorageError("expected file:///absolute/dir or file://relative/dir, got no path", uri=uri)
        return FileStore(Path(raw).expanduser(), uri=uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError("expected s3://bucket/prefix, got no bucket", uri=uri)
        return S3Store(parsed.netloc, parsed.path, uri=uri, endpoint_url=endpoint_url or None)
    raise StorageError(f"unsupported scheme {parsed.scheme!r}; expected 'file://' or 's3://'", uri=uri)
