"""Redis from the machine (Debian's redis-server) on 127.0.0.1 with a fresh password, no
persistence: Argo CD's cache, as its own deployment runs it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.argocd_local.errors import ArgoLocalError
from harness.ports import LOOPBACK, free_port
from harness.argocd_local.process import running


@dataclass(frozen=True)
class Redis:
    port: int
    password: str = field(repr=False)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"


def _pong(port: int, password: str) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and len(reply) < 256:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[Redis]:
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if binary is None:
        raise ArgoLocalError("redis-server is not installed; `apt-get install redis-server` (harness/setup.sh does)")
    port, password = free_port(), secrets.token_hex(16)
    # Config on stdin (`redis-server -`): the password never appears on a command line.
    config = "\n".join([
        f"bind {LOOPBACK}", f"port {port}", f"requirepass {password}", "save \"\"", "appendonly no",
        f"dir {workdir}", "protected-mode yes", "daemonize no", "",
    ])
    workdir.mkdir(parents=True, exist_ok=True)
    with running(
        "redis-server", [binary, "-"], log=workdir / "redis.log", env=dict(os.environ), stdin=config.encode(),
        ready=lambda: _pong(port, password), timeout=30,
    ):
        yield Redis(port, password)
