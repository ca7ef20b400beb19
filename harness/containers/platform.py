"""Images of the platform pieces a local cluster runs as pods, built offline from the toolchain:
Argo CD (its multi-call binary with git, helm and kustomize beside it, as its own image has
them), Redis (Debian's package) for Argo CD's cache, a git server for the GitOps repository, and
the OCI registry (CNCF Distribution's `registry`) `local` pulls its app images from.

They share one base: a debootstrap bookworm rootfs with git, tini, gpg, ssh and redis-server
(the local base recipe with those packages), imported once and cached like the apps' base.
Tags hold a digest of every input, so an unchanged build is found in seconds.

    >>> refs = ensure_platform_images(client, settings=settings)          # doctest: +SKIP
    >>> sorted(refs)
    ['mlops.local/argocd:v3.5.7', 'mlops.local/redis:bookworm']
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import docker

from harness.argocd_local import upstream
from harness.containers.base import BaseRecipe, ensure_base_image, image_exists
from harness.containers.images import build_from_files
from harness.containers.objectstore import file_digest
from harness.containers.settings import ContainersSettings
from harness.toolchain import ensure_tools, load_manifest

LOCAL_REGISTRY = "mlops.local"  # images only local clusters hold: never pulled
# What Argo CD's own image installs next to its binary (its Dockerfile), plus Redis.
PLATFORM_BASE = BaseRecipe(packages=(
    "python3", "python3-venv", "ca-certificates", "git", "tini", "gpg", "gpg-agent", "tzdata", "openssh-client",
    "redis-server",
))
ARGOCD_UID = 999  # the uid Argo CD's manifests run as (runAsUser in its Redis pod, its image's USER)
# The names the multi-call binary answers to (its Dockerfile's symlinks).
ARGOCD_COMMANDS = ("argocd-server", "argocd-repo-server", "argocd-cmp-server", "argocd-application-controller",
                   "argocd-dex", "argocd-notifications", "argocd-applicationset-controller", "argocd-k8s-auth",
                   "argocd-commit-server")
Log = Callable[[str], None]


def argocd_image() -> str:
    return f"{LOCAL_REGISTRY}/argocd:{load_manifest().groups[upstream.GROUP].version}"


REDIS_IMAGE = f"{LOCAL_REGISTRY}/redis:bookworm"


def platform_base(client: docker.DockerClient, *, settings: ContainersSettings, log: Log) -> str:
    return ensure_base_image(client, settings=settings, choice="local", recipe=PLATFORM_BASE, log=log)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _build(client: docker.DockerClient, ref: str, dockerfile: str, files: dict[str, Path], *, log: Log) -> str:
    """Build `dockerfile` once per content (a digest-tagged build), tagged `ref`; its image id."""
    digest = _digest(dockerfile, *(f"{name}={file_digest(path)}" for name, path in sorted(files.items())))
    built = f"{ref.split(':', 1)[0]}:build-{digest}"
    if not image_exists(client, built):
        build_from_files(client, built, dockerfile, files, log=log)
    image = client.images.get(built)
    image.tag(ref)
    return str(image.id)


def ensure_platform_images(client: docker.DockerClient, *, settings: ContainersSettings,
                           log: Log = lambda _: None) -> dict[str, str]:
    """Argo CD's and Redis's images, built when an input changed; ref -> image id."""
    base = platform_base(client, settings=settings, log=log)
    base_id = str(client.images.get(base).id)
    tools = ensure_tools(["argocd", "helm", "kustomize"])
    helpers = {name: upstream.source_dir() / "hack" / name for name in upstream.HELPER_SCRIPTS}
    files = {**tools, **helpers}
    links = " && ".join(f"ln -sf argocd /usr/local/bin/{c}" for c in ARGOCD_COMMANDS)
    argocd = "\n".join([
        f"FROM {base}",
        f"LABEL io.mlops-toolkit.base-id={base_id}",
        *(f"COPY {name} /usr/local/bin/{name}" for name in sorted(files)),
        f"RUN chmod 0755 /usr/local/bin/* && {links} "
        f"&& groupadd -g {ARGOCD_UID} argocd && useradd -r -u {ARGOCD_UID} -g argocd -d /home/argocd argocd "
        "&& mkdir -p /home/argocd /app/config/ssh /app/config/tls /app/config/gpg/source /app/config/gpg/keys "
        "&& chown argocd:0 /home/argocd && chown argocd /app/config/gpg/keys && chmod 0700 /app/config/gpg/keys "
        "&& touch /app/config/ssh/ssh_known_hosts && ln -sf /app/config/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts",
        "ENV USER=argocd HOME=/home/argocd",
        f"USER {ARGOCD_UID}",
        "WORKDIR /home/argocd",
        'ENTRYPOINT ["/usr/bin/tini", "--"]',
        "CMD []",
    ]) + "\n"
    redis = "\n".join([
        f"FROM {base}",
        f"LABEL io.mlops-toolkit.base-id={base_id}",
        # Argo CD's manifests give only arguments (`--save "" ...`): the server is the entrypoint.
        f"USER {ARGOCD_UID}",
        'ENTRYPOINT ["redis-server"]',
        "CMD []",
    ]) + "\n"
    return {
        argocd_image(): _build(client, argocd_image(), argocd, files, log=log),
        REDIS_IMAGE: _build(client, REDIS_IMAGE, redis, {}, log=log),
    }


def registry_image() -> str:
    return f"{LOCAL_REGISTRY}/registry:{load_manifest().groups['distribution'].version}"


def ensure_registry_image(client: docker.DockerClient, *, settings: ContainersSettings, log: Log = lambda _: None) -> str:
    """The local registry's image: the toolchain's `registry` binary on the platform base."""
    base = platform_base(client, settings=settings, log=log)
    files = ensure_tools(["registry"])
    dockerfile = "\n".join([
        f"FROM {base}",
        f"LABEL io.mlops-toolkit.base-id={client.images.get(base).id}",
        "COPY registry /usr/local/bin/registry",
        "RUN chmod 0755 /usr/local/bin/registry",
        'ENTRYPOINT ["/usr/bin/tini", "--"]',
    ]) + "\n"
    _build(client, registry_image(), dockerfile, files, log=log)
    return registry_image()
