"""Containers the way production runs them: non-root, read-only root filesystem, no capabilities,
ports on 127.0.0.1 only, labelled for cleanup; readiness as wait-strategy objects built on the one
waiting helper, failing fast (with the logs) when the container exits instead of becoming ready.

    >>> c = writable(DockerContainer(image, **hardened(settings)))   # doctest: +SKIP
    >>> publish_on_loopback(c, 5000).waiting_for(http_ready(5000, "/readyz"))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy

from apps.waiting import wait_for
from harness.containers.errors import ContainerFailedError
from harness.containers.settings import ContainersSettings

APP_UID = "10001"


def hardened(settings: ContainersSettings, *, keep: bool = False, reuse_key: str | None = None,
             user: str = APP_UID, **extra: Any) -> dict[str, Any]:
    """docker create kwargs for a container like production's security context (add `writable`)."""
    kwargs: dict[str, Any] = {
        "labels": settings.labels(keep=keep, reuse_key=reuse_key),
        "user": user,
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
    }
    kwargs.update(extra)
    return kwargs


def writable(container: DockerContainer, mounts: dict[str, str] | None = None) -> DockerContainer:
    """The only writable paths of a read-only container: tmpfs mounts (default /tmp), with options."""
    for path, options in (mounts or {"/tmp": "rw,nosuid,nodev,size=256m"}).items():
        container.tmpfs[path] = options
    return container


def publish_on_loopback(container: DockerContainer, *ports: int) -> DockerContainer:
    """Publish ports on 127.0.0.1 only (never on every interface), on free host ports."""
    for port in ports:
        container.ports[f"{port}/tcp"] = ("127.0.0.1", None)  # type: ignore[assignment]
    return container


def host_port(container: DockerContainer, port: int) -> int:
    return int(container.get_docker_client().port(container.get_container_id(), port))


def base_url(container: DockerContainer, port: int) -> str:
    return f"http://127.0.0.1:{host_port(container, port)}"


def logs_of(container: DockerContainer, *, tail: int = 200) -> str:
    """The container's recent stdout+stderr (interleaved as docker keeps them)."""
    try:
        raw = container.get_wrapped_container().logs(tail=tail)
    except Exception as e:  # noqa: BLE001 - logs are best effort: the container may be gone
        return f"(no logs: {e})"
    return raw.decode(errors="replace")


def state_of(container: DockerContainer) -> dict[str, Any]:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    return dict(wrapped.attrs.get("State", {}))


def describe(container: DockerContainer, *, tail: int = 40) -> str:
    try:
        state = state_of(container)
        status = f"status={state.get('Status')} exit={state.get('ExitCode')} oom={state.get('OOMKilled')}"
    except Exception as e:  # noqa: BLE001
        status = f"status unknown ({e})"
    return f"container {container._name or container.image}: {status}\nlast log lines:\n{logs_of(container, tail=tail)}"


class ReadyWhen(WaitStrategy):
    """Ready when `probe(container)` is truthy; fails at once if the container stops first."""

    def __init__(self, probe: Callable[[DockerContainer], Any], *, what: str, timeout: float = 120.0,
                 interval: float = 0.25) -> None:
        super().__init__()
        self._probe = probe
        self._what = what
        self._startup_timeout = timeout
        self._poll_interval = interval

    def wait_until_ready(self, container: Any) -> None:
        def check() -> Any:
            state = state_of(container)
            if state.get("Status") in ("exited", "dead"):
                raise ContainerFailedError(f"{self._what}: the container stopped before it was ready\n"
                                           f"{describe(container)}")
            return self._probe(container)

        wait_for(check, what=self._what, timeout=self._startup_timeout, interval=self._poll_interval,
                 transient=(httpx.HTTPError, ConnectionError, OSError), describe=lambda: describe(container))


def http_ready(port: int, path: str = "/readyz", *, timeout: float = 120.0) -> ReadyWhen:
    """Ready when GET path on the published port answers 200."""

    def probe(container: DockerContainer) -> bool:
        return httpx.get(base_url(container, port) + path, timeout=2.0).status_code == 200

    return ReadyWhen(probe, what=f"GET {path} on port {port} to answer 200", timeout=timeout)


def running(*, timeout: float = 30.0) -> ReadyWhen:
    """Ready once the container runs (for workers whose readiness shows in their queues)."""
    return ReadyWhen(lambda c: state_of(c).get("Running"), what="the container to run", timeout=timeout)
