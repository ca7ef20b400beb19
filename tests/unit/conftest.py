"""What the tests under tests/unit share: their markers, and a real S3-compatible server (MinIO)
with a store on it.

A test here is `unit` (in-process, fast) unless it starts a server process: then it is `process`,
whether it says so (`pytest.mark.process`) or uses the MinIO server below.
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.storage import S3Store
from harness.ports import free_port

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        if "s3_server" in getattr(item, "fixturenames", ()) and item.get_closest_marker("process") is None:
            item.add_marker(pytest.mark.process)
        if item.get_closest_marker("process") is None:
            item.add_marker(pytest.mark.unit)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self) -> Any:  # a boto3 S3 client (boto3 is untyped)
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real MinIO server from the toolchain's cached binary (never built here: that takes minutes)."""
    from apps.waiting import wait_for
    from harness.toolchain import tool_status

    where = {name: path for name, _, path in tool_status()}.get("minio", "not built")
    if where == "not built":
        pytest.skip("no S3-compatible server: the toolchain's minio is not built yet "
                    "(`mlops harness toolchain ensure minio`); the containers harness covers S3 with MinIO")
    port = free_port()
    server = S3Server(f"http://127.0.0.1:{port}", "unit-" + secrets.token_hex(4), secrets.token_hex(16))
    data = tmp_path_factory.mktemp("minio")
    env = {"MINIO_ROOT_USER": server.access_key, "MINIO_ROOT_PASSWORD": server.secret_key, "HOME": str(data),
           "MINIO_BROWSER": "off", "PATH": "/usr/bin:/bin"}
    log = data / "minio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([where, "server", str(data / "export"), "--address", f"127.0.0.1:{port}", "--quiet"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # ready, not just live: a live MinIO may still answer XMinioServerNotInitialized to S3 calls.
        wait_for(lambda: httpx.get(f"{server.endpoint}/minio/health/ready", timeout=2).status_code == 200,
                 what="MinIO to be ready", timeout=60, transient=(httpx.TransportError,),
                 describe=lambda: log.read_text()[-2000:])
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def s3_store(s3_server: S3Server) -> Iterator[S3Store]:
    client = s3_server.client()
    bucket = f"mlops-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    store = S3Store(bucket, "prefix/", uri=f"s3://{bucket}/prefix", client=client)
    yield store
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)
