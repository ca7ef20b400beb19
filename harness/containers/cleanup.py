"""Cleanup without testcontainers' reaper: everything the harness starts carries labels naming its
session, process and boot, so a session removes its own objects at the end, and the next session
removes what a killed one left (its process gone) — never anything another live run or anyone
else created, and never what was kept on purpose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import docker
import docker.errors
import psutil
from testcontainers.core.config import testcontainers_config

from harness.containers.settings import (
    LABEL_BOOT,
    LABEL_KEEP,
    LABEL_OWNER,
    LABEL_PID,
    LABEL_SESSION,
    OWNER,
    ContainersSettings,
)


@contextlib.contextmanager
def reaper_disabled() -> Iterator[None]:
    """testcontainers' reaper (Ryuk) off while inside, as it was before afterwards: its image cannot
    be pulled here, and our labels and session cleanup replace it."""
    before = testcontainers_config.ryuk_disabled
    testcontainers_config.ryuk_disabled = True
    try:
        yield
    finally:
        testcontainers_config.ryuk_disabled = before


def _owned(client: docker.DockerClient) -> Iterator[tuple[str, object, dict[str, str]]]:
    # The session label too: an image's labels are inherited, a session's only set at create.
    flt: dict[str, str | list[str] | bool] = {"label": [f"{LABEL_OWNER}={OWNER}", LABEL_SESSION]}
    for c in client.containers.list(all=True, filters=flt):
        yield "container", c, c.labels
    for n in client.networks.list(filters=flt):
        yield "network", n, n.attrs.get("Labels") or {}
    for v in client.volumes.list(filters=flt):
        yield "volume", v, v.attrs.get("Labels") or {}


def _remove(kind: str, obj: object) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        if kind == "container":
            obj.remove(force=True, v=True)  # type: ignore[attr-defined]
        else:
            obj.remove()  # type: ignore[attr-defined]


def _sweep(client: docker.DockerClient, wanted: Callable[[dict[str, str]], bool]) -> list[str]:
    removed: list[str] = []
    # Containers first: a network or volume in use cannot go before them.
    items = sorted(_owned(client), key=lambda t: ("container", "network", "volume").index(t[0]))
    for kind, obj, labels in items:
        if labels.get(LABEL_KEEP) == "true" or not wanted(labels):
            continue
        try:
            _remove(kind, obj)
        except docker.errors.APIError:
            continue  # still in use by something that is not ours to stop; the next sweep retries
        removed.append(f"{kind} {getattr(obj, 'name', '?')}")
    return removed


def remove_session(client: docker.DockerClient, settings: ContainersSettings) -> list[str]:
    """Remove every non-kept object this session created; returns what was removed."""
    return _sweep(client, lambda labels: labels.get(LABEL_SESSION) == settings.session_id)


def remove_stale(client: docker.DockerClient, settings: ContainersSettings) -> list[str]:
    """Remove non-kept objects of sessions whose process is gone (a kill -9, a crash, a reboot)."""

    def stale(labels: dict[str, str]) -> bool:
        if labels.get(LABEL_SESSION) == settings.session_id:
            return False
        if labels.get(LABEL_BOOT) != settings.boot_id:
            return True
        pid = labels.get(LABEL_PID, "")
        return pid.isdigit() and not psutil.pid_exists(int(pid))

    return _sweep(client, stale)


def remove_kept(client: docker.DockerClient) -> list[str]:
    """Remove the containers kept between runs (`mlops harness images clean`)."""
    removed: list[str] = []
    for kind, obj, labels in sorted(_owned(client), key=lambda t: ("container", "network", "volume").index(t[0])):
        if labels.get(LABEL_KEEP) == "true":
            with contextlib.suppress(docker.errors.APIError):
                _remove(kind, obj)
                removed.append(f"{kind} {getattr(obj, 'name', '?')}")
    return removed
