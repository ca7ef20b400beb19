"""Shared services of a test session: one Docker network and the S3-compatible store on it.

    >>> with session_network(settings) as net, s3_service(image=tag, settings=settings, network=net) as s3:
    ...     s3.create_bucket("models")                                 # doctest: +SKIP
    ...     env = s3.container_env()   # what an app container needs to reach it

Apps in containers reach the store as http://minio:9000 on the network; the host reaches it on a
127.0.0.1 port. With `keep`, the network and the store stay up after the run and are reused by
the next one (found by a label holding the hash of what they were started from).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from testcontainers.community.minio import MinioContainer
from testcontainers.core.network import Network

from harness.containers.containers import base_url, hardened, http_ready, publish_on_loopback, writable
from harness.containers.settings import LABEL_KEEP, LABEL_OWNER, LABEL_REUSE_KEY, OWNER, ContainersSettings

S3_ALIAS = "minio"
S3_PORT = 9000
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Service:
    """A running S3-compatible store: where the host and the containers reach it, and its keys."""

    endpoint_url: str  # from the host (127.0.0.1)
    internal_url: str  # from containers on the session network
    access_key: str
    secret_key: str
    container_id: str = ""  # the harness's MinIO container; empty for a store inside a cluster

    def container_env(self) -> dict[str, str]:
        """Environment for an app container on the session network."""
        return {"S3_ENDPOINT_URL": self.internal_url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": REGION}

    def host_env(self) -> dict[str, str]:
        """Environment for code on the host (boto3 reads its credentials from these)."""
        return {**self.container_env(), "S3_ENDPOINT_URL": self.endpoint_url}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=REGION)

    def create_bucket(self, name: str) -> str:
        """Create the bucket (idempotent) and return its s3:// URI."""
        s3 = self.client()
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        return f"s3://{name}"


def _reuse_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def session_network(settings: ContainersSettings, *, keep: bool = False) -> Iterator[Network]:
    """A user-defined bridge network (DNS by alias); kept networks are found again by name."""
    client = docker.from_env()
    network = Network(docker_network_kw={"labels": settings.labels(keep=keep), "driver": "bridge"})
    if keep:
        network.name = "mlops-harness-kept"
        try:
            network._network = client.networks.get(network.name)  # reuse: testcontainers has no lookup
        except docker.errors.NotFound:
            network.create()
    else:
        network.name = f"mlops-harness-{settings.session_id}"
        network.create()
    try:
        yield network
    finally:
        if not keep:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
        client.close()


def _find_kept(client: docker.DockerClient, reuse_key: str) -> Any | None:
    flt: dict[str, str | list[str] | bool] = {
        "label": [f"{LABEL_OWNER}={OWNER}", f"{LABEL_REUSE_KEY}={reuse_key}", f"{LABEL_KEEP}=true"]}
    for found in client.containers.list(filters=flt):
        if found.status == "running":
            return found
        with contextlib.suppress(docker.errors.APIError):
            found.remove(force=True)
    return None


def _service_from(found: Any, network: Network) -> S3Service:
    env = dict(e.split("=", 1) for e in found.attrs["Config"]["Env"] if "=" in e)
    port = found.attrs["NetworkSettings"]["Ports"][f"{S3_PORT}/tcp"][0]["HostPort"]
    return S3Service(endpoint_url=f"http://127.0.0.1:{port}", internal_url=f"http://{S3_ALIAS}:{S3_PORT}",
                     access_key=env["MINIO_ROOT_USER"], secret_key=env["MINIO_ROOT_PASSWORD"],
                     container_id=found.id)


@contextlib.contextmanager
def s3_service(*, image: str, settings: ContainersSettings, network: Network, keep: bool = False,
               timeout: float = 90.0) -> Iterator[S3Service]:
    """MinIO through testcontainers' own module, hardened, on the network, ready on /minio/health/ready."""
    client = docker.from_env()
    reuse_key = _reuse_key(image, network.name)
    if keep and (found := _find_kept(client, reuse_key)) is not None:
        yield _service_from(found, network)
        client.close()
        return
    # Fresh keys per store: nothing secret is written to git or to the logs.
    access_key, secret_key = f"mlops-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    minio = MinioContainer(
        image=image, access_key=access_key, secret_key=secret_key,
        **hardened(settings, keep=keep, reuse_key=reuse_key),
    )
    # The root filesystem is read-only: data lives in a tmpfs owned by MinIO's user.
    writable(minio, {"/tmp": "rw,size=64m", "/data": "rw,size=2g,uid=10001,gid=10001,mode=0700"})
    minio.with_name(f"mlops-minio-kept-{reuse_key[:8]}" if keep else f"mlops-minio-{settings.session_id}")
    minio.with_envs(MINIO_ROOT_USER=access_key, MINIO_ROOT_PASSWORD=secret_key)
    minio.with_network(network).with_network_aliases(S3_ALIAS)
    minio.waiting_for(http_ready(S3_PORT, "/minio/health/ready", timeout=timeout))
    publish_on_loopback(minio, S3_PORT)
    minio.__enter__()  # removes a half-started container before re-raising
    try:
        yield S3Service(endpoint_url=base_url(minio, S3_PORT), internal_url=f"http://{S3_ALIAS}:{S3_PORT}",
                        access_key=access_key, secret_key=secret_key, container_id=minio.get_container_id())
    finally:
        if not keep:
            minio.stop()
        client.close()
