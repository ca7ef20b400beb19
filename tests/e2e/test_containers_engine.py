"""The engine the harness starts when none answers: Debian's dockerd, waited for, and stopped after.

Runs a second, isolated dockerd (its own socket, data and exec roots, no bridge), so the engine
other tests and other runs use is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.containers.engine import docker_engine, find_dockerd
from harness.containers.errors import EngineError
from harness.containers.settings import ContainersSettings, settings_from_env

pytestmark = pytest.mark.e2e


@pytest.fixture
def isolated() -> Iterator[ContainersSettings]:
    if find_dockerd() is None or os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("starting a dockerd needs Debian's docker.io, iproute2 and root")
    # Short paths: containerd's socket lives under the exec root and unix sockets allow ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="mlk-", dir="/tmp"))
    # Its own bridge: `--bridge=none` would make dockerd delete docker0, the other engine's bridge.
    bridge = f"mlk{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    try:
        settings = settings_from_env({"MLOPS_CACHE_DIR": str(root / "cache"), "DOCKER_HOST": f"unix://{root}/d.sock"})
        yield settings.model_copy(update={"dockerd_args": (
            f"--data-root={root}/data", f"--exec-root={root}/x", f"--pidfile={root}/d.pid", f"--bridge={bridge}",
            "--iptables=false", "--ip-masq=false")})
    finally:
        subprocess.run(["ip", "link", "delete", bridge], check=False)
        # dockerd bind-mounts its data root onto itself (same filesystem: os.path.ismount cannot
        # see it) and leaves that mount behind on exit; unmount whatever sits under our folder.
        for mount in _mounts_under(root):
            subprocess.run(["umount", "--lazy", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dockerd_is_started_when_none_answers_and_stopped_after(isolated: ContainersSettings) -> None:
    with docker_engine(isolated) as engine:
        assert engine.started is not None, "an engine already answered on a fresh socket"
        assert engine.client.ping()
        assert engine.version
        pid = engine.started.pid
    assert not _alive(pid)


def test_a_dockerd_that_cannot_start_is_reported_with_its_log(isolated: ContainersSettings) -> None:
    broken = isolated.model_copy(update={"dockerd_args": (*isolated.dockerd_args, "--storage-driver=no-such-driver")})
    with pytest.raises(EngineError) as caught:
        with docker_engine(broken):
            pass
    text = str(caught.value)
    assert "dockerd exited" in text or "timed out" in text
    assert "no-such-driver" in text  # the log tail says why
