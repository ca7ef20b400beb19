"""Configuration of the containers harness, read once at the edge into one typed object."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from harness.config import cache_root

# Labels on everything the harness starts: cleanup finds its own objects by them and never
# touches anything else (testcontainers' reaper cannot be pulled here, so this replaces it).
LABEL_OWNER = "io.mlops-toolkit.owner"
LABEL_SESSION = "io.mlops-toolkit.session"
LABEL_PID = "io.mlops-toolkit.pid"
LABEL_BOOT = "io.mlops-toolkit.boot-id"
LABEL_KEEP = "io.mlops-toolkit.keep"
LABEL_REUSE_KEY = "io.mlops-toolkit.reuse-key"
OWNER = "mlops-harness"
# Images get a different key: containers inherit their image's labels, and a container run by
# someone else from our image must not look like ours.
LABEL_BUILT_BY = "io.mlops-toolkit.built-by"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


class ContainersSettings(BaseModel):
    """Where caches live, how long to wait, and who this session is (for labels)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_dir: Path = Field(description="Base rootfs tarballs, wheelhouses, dockerd logs.")
    docker_host: str | None = Field(default=None, description="DOCKER_HOST, if set; else the local socket.")
    dockerd_args: tuple[str, ...] = Field(default=(), description="Extra arguments for a dockerd we start.")
    engine_timeout_s: float = 60.0
    nice: int = Field(default=10, ge=0, le=19, description="Niceness of builds (and of a dockerd we start).")
    build_cpu_shares: int = Field(default=256, description="cgroup CPU weight of build containers (1024 = normal).")
    session_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    pid: int = Field(default_factory=os.getpid)
    boot_id: str = Field(default_factory=_boot_id)

    def labels(self, *, keep: bool = False, reuse_key: str | None = None) -> dict[str, str]:
        """Labels for one object this session creates."""
        out = {
            LABEL_OWNER: OWNER,
            LABEL_SESSION: self.session_id,
            LABEL_PID: str(self.pid),
            LABEL_BOOT: self.boot_id,
            LABEL_KEEP: "true" if keep else "false",
        }
        if reuse_key:
            out[LABEL_REUSE_KEY] = reuse_key
        return out


def settings_from_env(env: Mapping[str, str] | None = None) -> ContainersSettings:
    """The cache root (harness.config.cache_root) and DOCKER_HOST, read once."""
    env = os.environ if env is None else env
    return ContainersSettings(cache_dir=cache_root(env), docker_host=env.get("DOCKER_HOST") or None)


@cache
def default_settings() -> ContainersSettings:
    """The process-wide settings (one session id per process)."""
    return settings_from_env()
