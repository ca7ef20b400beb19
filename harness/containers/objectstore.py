"""The S3-compatible store for tests: a MinIO image built from the toolchain's `minio` binary.

The image is tagged by content (`mlops-minio:<hash>`) and also under the tag testcontainers'
own MinIO module starts by default, so `MinioContainer()` in any test finds it locally and
never pulls. The label `org.opencontainers.image.version` says which MinIO it really is.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from testcontainers.community.minio import MinioContainer

from harness.containers.errors import ImageBuildError
from harness.containers.images import BuiltImage
from harness.containers.settings import LABEL_BUILT_BY, OWNER, ContainersSettings

MINIO_REPOSITORY = "mlops-minio"
MINIO_UID = 10001
# testcontainers' MinIO module default; read from the module so an upgrade keeps them in step.
TESTCONTAINERS_MINIO_IMAGE: str = inspect.signature(MinioContainer.__init__).parameters["image"].default

_DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY minio /usr/local/bin/minio
RUN mkdir -p /data && chown {MINIO_UID}:{MINIO_UID} /data
# MinIO keeps its config under HOME; the data folder is the one writable place it needs.
ENV HOME=/data MINIO_BROWSER=off
USER {MINIO_UID}
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/minio"]
CMD ["server", "/data", "--address", ":9000"]
"""


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def minio_version(binary: Path) -> str:
    """The version the toolchain pinned, from the cache folder name (…/minio-<version>/minio)."""
    parent = binary.parent.name
    return parent.split("-", 1)[1] if parent.startswith("minio-") else "unknown"


def build_minio_image(client: docker.DockerClient, *, binary: Path, base_image: str, settings: ContainersSettings,
                      log: Callable[[str], None] = lambda _: None) -> BuiltImage:
    """Build (once per binary and base) the MinIO image, and tag it for testcontainers' MinIO module."""
    started = time.monotonic()
    try:
        base_id = str(client.images.get(base_image).id)
    except docker.errors.ImageNotFound as e:
        raise ImageBuildError(f"MinIO image: base image {base_image} is not in the engine; build it first") from e
    digest = hashlib.sha256(f"{file_digest(binary)}\0{_DOCKERFILE}\0{base_id}".encode()).hexdigest()
    tag = f"{MINIO_REPOSITORY}:{digest[:12]}"
    built = False
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        log(f"building {tag} from {binary}")
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(_DOCKERFILE.encode())
            tar.addfile(info, io.BytesIO(_DOCKERFILE.encode()))
            tar.add(binary, arcname="minio")
        context.seek(0)
        try:
            image, _ = client.images.build(
                fileobj=context, custom_context=True, tag=tag, buildargs={"BASE_IMAGE": base_image}, rm=True,
                forcerm=True, network_mode="none", container_limits={"cpushares": settings.build_cpu_shares},
                labels={LABEL_BUILT_BY: OWNER, "org.opencontainers.image.version": minio_version(binary)},
            )
        except (docker.errors.BuildError, docker.errors.APIError) as e:
            raise ImageBuildError(f"MinIO image build failed: {e}") from e
        built = True
    # The alias points at our image only when nothing else holds that tag (never retag a real pull).
    try:
        existing = client.images.get(TESTCONTAINERS_MINIO_IMAGE)
        owned = existing.labels.get(LABEL_BUILT_BY) == OWNER
    except docker.errors.ImageNotFound:
        existing, owned = None, True
    if existing is None or (owned and existing.id != image.id):
        repository, alias = TESTCONTAINERS_MINIO_IMAGE.rsplit(":", 1)
        image.tag(repository, alias)
    return BuiltImage(name="minio", tag=tag, built=built, seconds=time.monotonic() - started)
