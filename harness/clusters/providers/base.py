"""One interface for every cluster provider: create or reuse, kubeconfig, delete (all idempotent)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from environments.model import Environment
from harness.config import cache_root
from harness.clusters.errors import ClusterCommandError

ProviderName = Literal["kwok", "kind", "existing"]


class ClusterInfo(BaseModel):
    """A cluster the harness can talk to; `created` is True only for the call that created it."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    name: str
    kubeconfig: Path
    created: bool
    # Nodes are simulated (kwok): pods never run, volumes are never provisioned.
    simulated: bool
    # Seconds the create-or-reuse call took.
    seconds: float = 0.0


class ClusterProvider(Protocol):
    name: ProviderName

    def unavailable_reason(self) -> str | None:
        """None when this provider can run here, else why not (tests skip with this)."""

    def exists(self, cluster: str) -> bool: ...

    def create(self, cluster: str, *, env: Environment) -> ClusterInfo:
        """Create `cluster` shaped like `env`, or reuse it when it already exists."""

    def kubeconfig(self, cluster: str) -> Path: ...

    def delete(self, cluster: str) -> None:
        """Delete `cluster`; a no-op when it does not exist."""


def state_dir() -> Path:
    path = cache_root() / "clusters"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(command: list[str], *, env: dict[str, str] | None = None, timeout: float = 600, hint: str = "") -> str:
    """Run a tool with an argument list; its combined output, or ClusterCommandError naming it."""
    try:
        proc = subprocess.run(
            command, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise ClusterCommandError(command=command, returncode=-1, output=f"timed out after {timeout:.0f}s\n{out}", hint=hint) from None
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise ClusterCommandError(command=command, returncode=proc.returncode, output=output, hint=hint)
    return output
