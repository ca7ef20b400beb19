"""Make sure a Docker engine answers: use the one there, or start Debian's `dockerd` and wait for it.

    >>> with docker_engine() as engine:          # doctest: +SKIP
    ...     engine.client.ping()
    True

The engine is a context manager: a `dockerd` it started is stopped on exit (unless `keep`),
one it found running is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from apps.waiting import wait_for
from harness.containers.errors import EngineError, EngineUnavailableError
from harness.containers.privileged import runtime_args
from harness.containers.settings import LABEL_SESSION, ContainersSettings, default_settings
from harness.processes import stop_process

_SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin")
_TRANSIENT = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


@dataclass
class Engine:
    """A Docker engine that answers, and the `dockerd` process if this harness started it."""

    client: docker.DockerClient
    started: subprocess.Popen[bytes] | None
    log_path: Path | None

    @property
    def version(self) -> str:
        return str(self.client.version().get("Version", "?"))


def connect(settings: ContainersSettings) -> docker.DockerClient | None:
    """A client whose engine answers a ping, or None."""
    try:
        client = docker.DockerClient(base_url=settings.docker_host) if settings.docker_host else docker.from_env()
        client.ping()
    except _TRANSIENT:
        return None
    return client


def find_dockerd() -> str | None:
    """dockerd from PATH or the sbin folders a non-login PATH lacks."""
    found = shutil.which("dockerd")
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / "dockerd"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _start_dockerd(settings: ContainersSettings) -> tuple[subprocess.Popen[bytes], Path]:
    if settings.docker_host and not settings.docker_host.startswith("unix://"):
        raise EngineError(
            f"no Docker engine answers at DOCKER_HOST={settings.docker_host}; the harness starts only a local "
            "dockerd: start that engine, or unset DOCKER_HOST"
        )
    dockerd = find_dockerd()
    if dockerd is None:
        raise EngineUnavailableError(
            "no Docker engine answers and dockerd is not installed: install Debian's docker.io "
            "(apt-get install docker.io, or run harness/setup.sh), or point DOCKER_HOST at an engine"
        )
    if os.geteuid() != 0:
        raise EngineUnavailableError(
            f"no Docker engine answers and {dockerd} needs root to start: start it yourself "
            "(sudo systemctl start docker, or sudo dockerd &) or point DOCKER_HOST at an engine"
        )
    log_dir = settings.cache_dir / "dockerd"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "dockerd.log"
    nice = shutil.which("nice")
    host = [f"--host={settings.docker_host}"] if settings.docker_host else []
    # Where the host cannot grant every capability, privileged containers (kind's nodes) need this.
    runtime = runtime_args(settings.cache_dir / "dockerd")
    argv = ([nice, "-n", str(settings.nice)] if nice else []) + [dockerd, *host, *runtime, *settings.dockerd_args]
    with log_path.open("ab") as log:
        # Its own session: a Ctrl-C aimed at pytest must not kill the engine before cleanup runs.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return proc, log_path


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_engine(settings: ContainersSettings | None = None) -> Engine:
    """Return an answering engine, starting `dockerd` when none answers; raises EngineError."""
    settings = settings or default_settings()
    client = connect(settings)
    if client is not None:
        return Engine(client=client, started=None, log_path=None)
    proc, log_path = _start_dockerd(settings)

    def answering() -> docker.DockerClient | None:
        found = connect(settings)
        if found is None and proc.poll() is not None:
            # Lost a race with another starter is fine if theirs answers; otherwise say why ours died.
            raise EngineError(
                f"dockerd exited with code {proc.returncode} before answering; last lines of {log_path}:\n"
                f"{_tail(log_path)}"
            )
        return found

    try:
        client = wait_for(answering, what="dockerd to answer a ping", timeout=settings.engine_timeout_s,
                          interval=0.25, describe=lambda: f"dockerd log tail ({log_path}):\n{_tail(log_path)}",
                          hint="read the dockerd log above; storage driver and iptables errors are the usual causes")
    except BaseException:
        stop_process(proc, timeout=20)
        raise
    # started=None when we lost a start race: the engine is someone else's to stop.
    return Engine(client=client, started=proc if proc.poll() is None else None, log_path=log_path)


def stop_engine(engine: Engine, *, timeout: float = 30.0, session_id: str | None = None) -> bool:
    """Stop the dockerd this harness started; True if stopped.

    An engine found running is left alone, and so is ours while containers of other runs
    (another session on this machine, or anyone's) still run on it: stopping would kill them.
    """
    stopped = False
    if engine.started is not None and engine.started.poll() is None:
        try:
            others = [c.name for c in engine.client.containers.list()
                      if session_id is None or c.labels.get(LABEL_SESSION) != session_id]
        except _TRANSIENT:
            others = []
        if not others:
            stop_process(engine.started, timeout=timeout)  # dockerd stops its containers and shims on TERM
            stopped = True
    with contextlib.suppress(Exception):
        engine.client.close()
    return stopped


@contextlib.contextmanager
def docker_engine(settings: ContainersSettings | None = None, *, keep: bool = False) -> Iterator[Engine]:
    """An answering engine for the block; a dockerd started here is stopped after it unless `keep`."""
    engine = start_engine(settings)
    try:
        yield engine
    finally:
        if not keep:
            stop_engine(engine, session_id=(settings or default_settings()).session_id)
