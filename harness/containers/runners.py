"""The app containers: the inference API, one-shot pipeline runs, long-running workers, shared volumes.

Each is a context manager that removes what it started, also when starting fails:

    >>> with inference_api(image=tags["ml-inference-api"], settings=s, network=net,
    ...                    env={**s3.container_env(), "MODEL_REGISTRY_URI": "s3://models/registry"}) as api:
    ...     httpx.get(api.url + "/v1/model").json()                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.waiting_utils import WaitStrategy

from apps.waiting import wait_for
from harness.containers.containers import (
    APP_UID,
    base_url,
    hardened,
    http_ready,
    logs_of,
    publish_on_loopback,
    running,
    state_of,
    writable,
)
from harness.containers.errors import ContainerFailedError
from harness.containers.settings import ContainersSettings
from harness.containers.workloads import shape_for

API_PORT = 5000
API_COMMAND = ["python", "-m", "apps.api"]


@dataclass
class Running:
    """A started container: its testcontainers handle, a name, and (if it serves) its URL ("" if not)."""

    container: DockerContainer
    name: str
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def logs(self, tail: int = 200) -> str:
        return logs_of(self.container, tail=tail)

    def running(self) -> bool:
        return bool(state_of(self.container).get("Running"))

    def kill(self) -> None:
        """SIGKILL, as a node loss or OOM kill would: no graceful shutdown."""
        self.container.get_wrapped_container().kill()
        wait_for(lambda: state_of(self.container).get("Status") == "exited", what=f"{self.name} to stop",
                 timeout=30)

    def restart(self) -> None:
        """Start the same container again (same config, same volumes)."""
        self.container.get_wrapped_container().start()
        wait_for(lambda: state_of(self.container).get("Running"), what=f"{self.name} to run again", timeout=30)

    def wait_exit(self, timeout: float = 600) -> int:
        """Wait until the container exits; its exit code."""
        def exited() -> dict[str, Any] | None:
            state = state_of(self.container)
            return state if state.get("Status") in ("exited", "dead") else None

        state = wait_for(exited, what=f"{self.name} to finish", timeout=timeout, interval=0.5,
                         describe=lambda: self.logs(40))
        return int(state.get("ExitCode", -1))


def _container(image: str, *, settings: ContainersSettings, network: Network | None, name: str,
               env: Mapping[str, str], command: Sequence[str], volumes: Mapping[str, str],
               keep: bool = False, env_name: str = "local") -> DockerContainer:
    """The container as the workload of `env_name`'s rendered tree that runs `command` runs it
    (harness/containers/workloads.py); `env` adds to (or overrides) the workload's environment
    what differs in Docker."""
    shape = shape_for(command, image=_repository(image), env_name=env_name)
    if shape is None:  # an image no workload runs: the restricted profile every workload has
        c = writable(DockerContainer(image, **hardened(settings, keep=keep)))
    else:
        c = DockerContainer(image, **{**hardened(settings, keep=keep), **shape.create_kwargs()})
        c.tmpfs.update(shape.tmpfs)
    for volume, path in volumes.items():
        c.with_volume_mapping(volume, path, "rw")
    c.with_name(name).with_envs(**{**(shape.environment if shape else {}), **env})
    c.with_command(list(command))
    if network is not None:
        c.with_network(network)
    return c


def _repository(image: str) -> str:
    """`ml-pipeline` of `ml-pipeline:1a2b3c` (or of `registry/ml-pipeline:tag`)."""
    return image.rsplit(":", 1)[0].rsplit("/", 1)[-1]


@contextlib.contextmanager
def started(container: DockerContainer, name: str, *, url_port: int | None = None) -> Iterator[Running]:
    container.__enter__()  # removes a half-started container before re-raising
    try:
        url = base_url(container, url_port) if url_port else ""
        yield Running(container=container, name=name, url=url)
    finally:
        container.stop()


def unique(prefix: str, settings: ContainersSettings) -> str:
    return f"{prefix}-{settings.session_id}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def inference_api(*, image: str, settings: ContainersSettings, network: Network | None,
                  env: Mapping[str, str], name: str | None = None, timeout: float = 180.0) -> Iterator[Running]:
    """`python -m apps.api` as its Deployment runs it, ready when /readyz answers 200."""
    name = name or unique("ml-inference-api", settings)
    c = _container(image, settings=settings, network=network, name=name, env={"PORT": str(API_PORT), **env},
                   command=API_COMMAND, volumes={})
    publish_on_loopback(c, API_PORT).waiting_for(http_ready(API_PORT, "/readyz", timeout=timeout))
    with started(c, name, url_port=API_PORT) as run:
        yield run


@contextlib.contextmanager
def worker(*, image: str, settings: ContainersSettings, network: Network | None, command: Sequence[str],
           env: Mapping[str, str], volumes: Mapping[str, str] | None = None, name: str | None = None,
           ready: WaitStrategy | None = None) -> Iterator[Running]:
    """A long-running (or one-shot) pipeline container; ready once it runs unless told otherwise."""
    name = name or unique("ml-pipeline", settings)
    c = _container(image, settings=settings, network=network, name=name, env=env, command=command,
                   volumes=volumes or {})
    c.waiting_for(ready or running())
    with started(c, name) as run:
        yield run


def run_to_completion(*, image: str, settings: ContainersSettings, network: Network | None,
                      command: Sequence[str], env: Mapping[str, str], volumes: Mapping[str, str] | None = None,
                      timeout: float = 600, env_name: str = "local") -> tuple[int, str]:
    """Run a one-shot container (a Job's pod of `env_name`); returns (exit code, logs); always removed."""
    name = unique("ml-pipeline-run", settings)
    c = _container(image, settings=settings, network=network, name=name, env=env, command=command,
                   volumes=volumes or {}, env_name=env_name)
    # A one-shot run may finish before a "running" check: no readiness wait, only the exit.
    with started(c, name) as run:
        code = run.wait_exit(timeout)
        return code, run.logs(400)


@contextlib.contextmanager
def app_volume(*, settings: ContainersSettings, image: str, mount: str = "/data") -> Iterator[str]:
    """A labelled named volume whose root belongs to the apps' user (as an fsGroup would make it)."""
    client = docker.from_env()
    name = unique("mlops-vol", settings)
    client.volumes.create(name=name, labels=settings.labels())
    try:
        try:
            # A fresh volume is root-owned; one short root step with only CAP_CHOWN hands it over.
            client.containers.run(image, [f"{APP_UID}:{APP_UID}", mount], user="0", remove=True,
                                  entrypoint=["chown"], volumes={name: {"bind": mount, "mode": "rw"}},
                                  network_mode="none", cap_drop=["ALL"], cap_add=["CHOWN"], labels=settings.labels())
        except docker.errors.ContainerError as e:
            raise ContainerFailedError(f"could not hand volume {name} to uid {APP_UID}: {e}") from e
        yield name
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.volumes.get(name).remove(force=True)
        client.close()
