"""The publish step's registry check against a real CNCF Distribution registry process on
127.0.0.1 (htpasswd auth): a digest it holds passes, anything else is one line, nothing published."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest

from apps.waiting import wait_for
from argocd.errors import PublishError
from argocd.images import require_held
from environments import Environment, load_environment
from harness.ports import free_port
from harness.toolchain import ensure_tool

pytestmark = pytest.mark.process

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Registry:
    host: str
    credentials: str

    def push(self, name: str) -> str:
        """A minimal OCI image (a config blob, no layers) under `name:v1`: its manifest digest."""
        auth = tuple(self.credentials.split(":", 1))
        base = f"http://{self.host}/v2/{name}"
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}},
                            sort_keys=True).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        upload = httpx.post(f"{base}/blobs/uploads/", auth=auth).raise_for_status()  # type: ignore[arg-type]
        location = upload.headers["Location"]
        location = location if location.startswith("http") else f"http://{self.host}{location}"
        # The upload's state rides in the Location's query: the digest is added to it, not put in its place.
        location += ("&" if "?" in location else "?") + f"digest={config_digest}"
        httpx.put(location, content=config, auth=auth,  # type: ignore[arg-type]
                  headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)}})
        answer = httpx.put(f"{base}/manifests/v1", content=manifest, auth=auth,  # type: ignore[arg-type]
                           headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
        return str(answer.headers["Docker-Content-Digest"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("registry")
    password = secrets.token_urlsafe(16)
    (root / "htpasswd").write_text(f"ci:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    port = free_port()
    (root / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\nauth: {{htpasswd: {{realm: test, path: {root / 'htpasswd'}}}}}\n")
    log = root / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(ensure_tool("registry")), "serve", str(root / "config.yml")],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 401,
                 what="the registry to answer", timeout=60, transient=(httpx.TransportError,),
                 describe=lambda: log.read_text()[-2000:])
        yield Registry(f"127.0.0.1:{port}", f"ci:{password}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _env(registry: Registry, digests: dict[str, str]) -> Environment:
    return load_environment("local", {"images": {"registry": registry.host, "digests": digests}})


def test_digests_the_registry_holds_pass(registry: Registry) -> None:
    digests = {name: registry.push(name) for name in ("ml-pipeline", "ml-inference-api")}
    require_held(_env(registry, digests), credentials=registry.credentials)


def test_a_digest_the_registry_lacks_is_refused_naming_image_and_registry(registry: Registry) -> None:
    digests = {"ml-pipeline": registry.push("ml-pipeline"), "ml-inference-api": "sha256:" + "0" * 64}
    with pytest.raises(PublishError) as caught:
        require_held(_env(registry, digests), credentials=registry.credentials)
    assert str(caught.value) == (
        f"env local: image {registry.host}/ml-inference-api@sha256:{'0' * 64} is not in registry {registry.host}; "
        "nothing was published: push them: mlops images push local")


def test_wrong_credentials_are_refused_naming_the_registry(registry: Registry) -> None:
    digests = {"ml-pipeline": registry.push("ml-pipeline")}
    with pytest.raises(PublishError, match=f"registry {registry.host} refused the credentials for image ml-pipeline"):
        require_held(_env(registry, digests), credentials="ci:wrong")


def test_an_unreachable_registry_is_one_line_naming_it(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = load_environment("local", {"images": {"registry": host, "digests": {"ml-pipeline": "sha256:" + "1" * 64}}})
    with pytest.raises(PublishError, match=f"registry {host} unreachable for image ml-pipeline: .*mlops images push local"):
        require_held(env, credentials="ci:x")
