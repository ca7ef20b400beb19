"""A read-only git server on 127.0.0.1 (`git daemon`) for the bare repositories under one
directory: what Argo CD's repo-server clones, as it would clone a hosted repository.

    with git_daemon(Path("/tmp/repos")) as server:
        server.url("local.git")   # git://127.0.0.1:<port>/local.git
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.argocd_local.errors import ArgoLocalError
from harness.ports import LOOPBACK, accepting, free_port
from harness.argocd_local.process import Running, running


@dataclass(frozen=True)
class GitDaemon:
    base: Path
    port: int
    process: Running

    def url(self, repo: str) -> str:
        return f"git://{LOOPBACK}:{self.port}/{repo}"


@contextlib.contextmanager
def git_daemon(base: Path, *, log: Path | None = None, port: int | None = None) -> Iterator[GitDaemon]:
    """Serve every bare repository under `base` (existing or created later), read-only; on
    `port`, else one the OS picks."""
    git = shutil.which("git")
    if git is None:
        raise ArgoLocalError("git is not on PATH; install it (`apt-get install git`, harness/setup.sh does)")
    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if accepting(port):
        raise ArgoLocalError(f"127.0.0.1:{port} is taken: another git daemon (an earlier `mlops up`?) or another "
                             "server listens there; stop it or choose another port")
    command = [
        git, "daemon", "--reuseaddr", "--export-all", "--informative-errors",
        f"--listen={LOOPBACK}", f"--port={port}", f"--base-path={base}", str(base),
    ]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    with running("git daemon", command, log=log or base.parent / "git-daemon.log", env=env, ready=lambda: accepting(port), timeout=30) as proc:
        yield GitDaemon(base, port, proc)


def git_server_name(cluster: str) -> str:
    """The git server container of a cluster: its name is its host name on the cluster's network."""
    return f"{cluster}-git"


GIT_PORT = 9418
# Read-only `git daemon` for repositories the host owns; the server runs as nobody, so git's
# ownership check is told these are safe (GIT_CONFIG_* reaches upload-pack too).
_SERVE = ["git", "daemon", "--reuseaddr", "--export-all", "--informative-errors", f"--port={GIT_PORT}",
          "--base-path=/srv/git", "/srv/git"]
_SAFE = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}


def git_container(client: Any, *, cluster: str, base: Path, network: str, image: str) -> str:
    """A git server for the bare repositories under `base`, as a container on `network` (kind's),
    so pods clone from it by name; created once, kept with the cluster (a push is served at once:
    the repositories are mounted, not copied). Returns its host name."""
    import docker.errors

    from harness.containers.settings import LABEL_BUILT_BY, OWNER

    name = git_server_name(cluster)
    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    try:
        found = client.containers.get(name)
        mounts = {m["Destination"]: m["Source"] for m in found.attrs["Mounts"]}
        if found.attrs["Config"]["Image"] == image and mounts.get("/srv/git") == str(base):
            if found.status != "running":
                found.start()
            return name
        found.remove(force=True)
    except docker.errors.NotFound:
        pass
    client.containers.run(
        image, _SERVE, name=name, detach=True, network=network, environment=_SAFE, user="65534:65534",
        volumes={str(base): {"bind": "/srv/git", "mode": "ro"}}, read_only=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], restart_policy={"Name": "unless-stopped"},
        # No session labels: it lives as long as the cluster (removed with it), not as this process.
        labels={LABEL_BUILT_BY: OWNER, "io.mlops-toolkit.role": "git-server"},
    )
    return name
