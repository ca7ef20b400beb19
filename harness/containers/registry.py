"""The local OCI registry: CNCF Distribution (built from its module by the toolchain) as a
container, htpasswd auth, storage in the cache. `local` gets its images the way a cloud
environment does: pushed once per content, then pulled by digest; never side-loaded.

The host pushes to `localhost:5001` (published on 127.0.0.1 only; Docker treats loopback
registries as plain HTTP). kind's nodes pull the same names: containerd's hosts.toml maps
`localhost:5001` to the container on kind's network, and the nodes' CRI holds the registry's
credentials (node-level, as EKS nodes pull from ECR with their role: pods carry no pull secret).

    >>> registry = ensure_local_registry(client, settings=settings)          # doctest: +SKIP
    >>> push_images(client, registry.target(), {"ml-pipeline": "ml-pipeline:5c1e0b2a9d43"})
    {'ml-pipeline': Pushed(name='ml-pipeline', digest='sha256:…', pushed=False)}
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import docker
import docker.errors
import httpx

from apps.waiting import wait_for
from argocd.errors import PublishError
from argocd.images import ECR_HOST, api_url, manifest_digest
from harness.config import cache_root
from harness.containers.containers import APP_UID
from harness.containers.errors import ContainersError
from environments import Environment
from environments.model import IMAGE_DIGEST
from environments.loader import with_overrides
from harness.containers.images import APP_IMAGES
from harness.containers.platform import ensure_registry_image
from harness.containers.settings import LABEL_BUILT_BY, OWNER, ContainersSettings

NAME = "mlops-registry"  # its container, and its host name on kind's network
PORT = 5000  # inside the container
HOST_PORT = 5001  # on 127.0.0.1
HOST = f"localhost:{HOST_PORT}"  # what the host pushes to and every `local` image reference names
USERNAME = "mlops"
DIGEST = re.compile(IMAGE_DIGEST)
CONFIG = """\
version: 0.1
log: {level: warn, formatter: text}
storage:
  filesystem: {rootdirectory: /var/lib/registry}
  delete: {enabled: false}
http:
  addr: ":5000"
  # Behind no proxy, reached as localhost:5001 by the host and mlops-registry:5000 by the nodes.
  relativeurls: true
auth:
  htpasswd: {realm: mlops-local, path: /etc/distribution/htpasswd}
"""
Log = Callable[[str], None]


class RegistryError(ContainersError):
    """A registry refused or could not be reached; the message names it, the image and what to do."""


@dataclass(frozen=True)
class RegistryTarget:
    """Where images go (a registry host and the path under it) and the credentials that push there."""

    host: str
    username: str
    password: str
    what_to_do: str  # said with every failure: how to make this registry answer
    namespace: str = ""  # repositories' path under the host (ECR's "ml/dev"), "" for none

    def auth(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    def credentials(self) -> str:
        """"user:password", as the registry check takes them."""
        return f"{self.username}:{self.password}"

    def repository(self, name: str) -> str:
        return f"{self.namespace}/{name}" if self.namespace else name


@dataclass(frozen=True)
class Pushed:
    name: str
    digest: str
    pushed: bool  # False: the registry already held this content


@dataclass(frozen=True)
class LocalRegistry:
    """The running local registry and where its files live (the cache, outlasting clusters)."""

    root: Path
    password: str

    def target(self) -> RegistryTarget:
        return RegistryTarget(host=HOST, username=USERNAME, password=self.password,
                              what_to_do="is the local registry up? `mlops images push local` starts it")

    def credentials(self) -> str:
        return self.target().credentials()

    def node_hosts_dir(self) -> Path:
        """containerd's certs.d for kind's nodes (mounted read-only at /etc/containerd/certs.d)."""
        return self.root / "certs.d"

    def containerd_patch(self) -> str:
        """The nodes' containerd settings: hosts from certs.d, the registry's credentials by host."""
        auth = "\n".join(
            f'[plugins."io.containerd.grpc.v1.cri".registry.configs."{host}".auth]\n'
            f'  username = "{USERNAME}"\n  password = "{self.password}"'
            for host in (HOST, f"{NAME}:{PORT}"))
        return f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n{auth}\n'


def registry_root() -> Path:
    return cache_root() / "registry"


def local_registry() -> LocalRegistry:
    """The local registry's files, its password made once (0600, like a stack secret) if none yet."""
    root = registry_root()
    root.mkdir(parents=True, exist_ok=True)
    secret = root / "password"
    if not secret.is_file():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24))
    password = secret.read_text().strip()
    htpasswd = root / "htpasswd"
    if not htpasswd.is_file() or not _matches(htpasswd, password):
        htpasswd.write_text(f"{USERNAME}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}\n")
    hosts = root / "certs.d" / HOST
    hosts.mkdir(parents=True, exist_ok=True)
    (hosts / "hosts.toml").write_text(
        f'server = "http://{NAME}:{PORT}"\n\n[host."http://{NAME}:{PORT}"]\n  capabilities = ["pull", "resolve"]\n')
    return LocalRegistry(root=root, password=password)


def _matches(htpasswd: Path, password: str) -> bool:
    user, _, hashed = htpasswd.read_text().strip().partition(":")
    return user == USERNAME and bcrypt.checkpw(password.encode(), hashed.encode())


def ensure_local_registry(client: docker.DockerClient, *, image: str, log: Log = lambda _: None,
                          timeout: float = 60) -> LocalRegistry:
    """The registry container running (created once, kept: its storage is the cache's) and answering."""
    registry = local_registry()
    data = registry.root / "data"
    data.mkdir(exist_ok=True)
    # Non-root either way: root hands the storage to the apps' uid, anyone else runs it as themselves.
    user = f"{APP_UID}:{APP_UID}" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
    if os.geteuid() == 0:
        os.chown(data, int(APP_UID), int(APP_UID))
    config = registry.root / "config.yml"
    config.write_text(CONFIG)
    found: Any
    try:
        found = client.containers.get(NAME)
        if found.attrs["Config"]["Image"] != image:
            found.remove(force=True)
            found = None
    except docker.errors.NotFound:
        found = None
    if found is None:
        log(f"local registry: starting {NAME} on 127.0.0.1:{HOST_PORT}")
        run: Any = client.containers.run
        found = run(
            image, ["registry", "serve", "/etc/distribution/config.yml"], name=NAME, detach=True,
            user=user, read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            ports={f"{PORT}/tcp": ("127.0.0.1", HOST_PORT)},
            volumes={str(data): {"bind": "/var/lib/registry", "mode": "rw"},
                     str(config): {"bind": "/etc/distribution/config.yml", "mode": "ro"},
                     str(registry.root / "htpasswd"): {"bind": "/etc/distribution/htpasswd", "mode": "ro"}},
            restart_policy={"Name": "unless-stopped"},
            # No session labels: it outlives sessions and clusters, as its storage does.
            labels={LABEL_BUILT_BY: OWNER, "io.mlops-toolkit.role": "registry"},
        )
    elif found.status != "running":
        found.start()

    def answers() -> bool:
        try:  # 401 without credentials: it is up and enforcing auth
            return httpx.get(f"{api_url(HOST)}/v2/", timeout=2).status_code == 401
        except httpx.HTTPError:
            found.reload()
            if found.status == "exited":
                raise RegistryError(f"registry {NAME} exited: {found.logs(tail=30).decode(errors='replace')}") from None
            return False

    wait_for(answers, timeout=timeout, interval=0.3, what=f"registry {NAME} to answer at {api_url(HOST)}")
    return registry


@dataclass(frozen=True)
class PushedImages:
    """What one push left in a registry: each image's digest there."""

    target: RegistryTarget
    images: dict[str, Pushed]

    def reference(self, name: str) -> str:
        """`<registry>/<name>@<digest>`: how a pod names the pushed image."""
        try:
            return f"{self.target.host}/{self.target.repository(name)}@{self.images[name].digest}"
        except KeyError:
            raise RegistryError(f"image {name!r} was not pushed to {self.target.host}; "
                                f"pushed: {sorted(self.images)}") from None

    def count(self) -> int:
        return sum(p.pushed for p in self.images.values())

    def deployed(self, env: Environment) -> Environment:
        """`env` naming its app images as pushed: from the registry, by the digests the push reported."""
        names = sorted(spec.name for spec in APP_IMAGES)
        for name in names:
            self.reference(name)  # each app image was pushed
        namespace = f"/{self.target.namespace}" if self.target.namespace else ""
        return with_overrides(env, {"images": {"registry": f"{self.target.host}{namespace}", "pull_policy": "IfNotPresent",
                                               "digests": {n: self.images[n].digest for n in names}}})


def ecr_target(registry: str) -> RegistryTarget:
    """A stack's ECR prefix (`<account>.dkr.ecr.<region>.amazonaws.com/<namespace>`, its
    `image_registry` output) with push credentials from `ecr:GetAuthorizationToken` for that
    account and region, through boto3 and the caller's AWS credentials."""
    import base64

    import boto3
    import botocore.exceptions

    host, _, namespace = registry.partition("/")
    match = ECR_HOST.match(host)
    if not match:
        raise RegistryError(f"{registry!r} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com/...): "
                            "is it the stack's image_registry output?")
    todo = f"give this shell AWS credentials for account {match['account']} (AWS_PROFILE, `aws sso login`)"
    try:
        answer = boto3.client("ecr", region_name=match["region"]).get_authorization_token(
            registryIds=[match["account"]])
        token = answer["authorizationData"][0]["authorizationToken"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise RegistryError(f"ECR login to {host} failed: {e}; {todo}") from None
    username, _, password = base64.b64decode(token).decode().partition(":")
    return RegistryTarget(host=host, username=username, password=password, what_to_do=todo, namespace=namespace)


def push_local(client: docker.DockerClient, images: Mapping[str, str], *, settings: ContainersSettings,
               log: Log = lambda _: None) -> PushedImages:
    """The local registry up (its image built from the toolchain once) and `images` in it."""
    registry = ensure_local_registry(client, image=ensure_registry_image(client, settings=settings, log=log), log=log)
    return PushedImages(registry.target(), push_images(client, registry.target(), images, log=log))


def connect(client: docker.DockerClient, network: str) -> None:
    """The registry on `network` too (kind's), so the nodes reach it by name; idempotent."""
    try:
        found = client.containers.get(NAME)
    except docker.errors.NotFound:
        raise RegistryError(f"registry {NAME} is not running: push the images first "
                            "(mlops images push local)") from None
    if network not in found.attrs["NetworkSettings"]["Networks"]:
        client.networks.get(network).connect(found)


def push_images(client: docker.DockerClient, target: RegistryTarget, images: Mapping[str, str],
                log: Log = lambda _: None) -> dict[str, Pushed]:
    """Each local image (name -> its content-tagged reference) in the registry under its name and
    content tag; pushed only when the registry lacks that tag. name -> its digest there."""
    out = {}
    for name, local in images.items():
        tag = local.rsplit(":", 1)[1]
        try:
            digest = manifest_digest(target.host, target.repository(name), tag,
                                     credentials=target.credentials(), what_to_do=target.what_to_do)
        except PublishError as e:
            raise RegistryError(str(e)) from None
        if digest is not None:
            out[name] = Pushed(name, digest, pushed=False)
            continue
        started = time.monotonic()
        remote = f"{target.host}/{target.repository(name)}"
        try:
            client.images.get(local).tag(remote, tag)
        except docker.errors.ImageNotFound:
            raise RegistryError(f"image {local} is not on this engine: build it first "
                                "(mlops harness images build)") from None
        digest = _push(client, remote, tag, target)
        client.images.remove(f"{remote}:{tag}", noprune=True)  # the content-tagged local name stays
        log(f"pushed {name}:{tag} to {target.host} in {time.monotonic() - started:.1f} s ({digest[:19]})")
        out[name] = Pushed(name, digest, pushed=True)
    return out


def _push(client: docker.DockerClient, remote: str, tag: str, target: RegistryTarget) -> str:
    digest = None
    for event in client.images.push(remote, tag=tag, auth_config=target.auth(), stream=True, decode=True):
        if "error" in event:
            detail = str(event.get("errorDetail", {}).get("message") or event["error"])
            raise RegistryError(f"push of {remote}:{tag} to {target.host} failed: {detail}; {target.what_to_do}")
        aux: dict[str, Any] = event.get("aux") or {}
        digest = aux.get("Digest", digest)
    if not digest or not DIGEST.match(digest):
        raise RegistryError(f"push of {remote}:{tag} to {target.host} reported no digest")
    return str(digest)
