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

from harness.argocd_local.errors import ArgoLocalError
from harness.argocd_local.ports import LOOPBACK, accepting, free_port
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
