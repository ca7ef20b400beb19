"""The kind provider's cluster creation, where a loaded machine is slow to boot a node."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.clusters.errors import ClusterCommandError
from harness.clusters.providers import kind
from harness.clusters.providers.kind import KindProvider


SLOW = ("Creating cluster ...\nERROR: failed to create cluster: could not find a log line that matches "
        '"Reached target .*Multi-User System.*|detected cgroup v1"')


def _provider(monkeypatch: pytest.MonkeyPatch, outcomes: list[str | None]) -> tuple[KindProvider, list[str]]:
    """A provider whose `kind create cluster` fails with each given output in turn (None: succeeds)."""
    calls: list[str] = []

    def run(command: list[str], **_: object) -> str:
        calls.append(command[1])
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise ClusterCommandError(command=command, returncode=1, output=outcome)
        return ""

    provider = KindProvider()
    monkeypatch.setattr(kind, "run", run)
    monkeypatch.setattr(provider, "_kind", lambda: Path("/bin/kind"))
    monkeypatch.setattr(provider, "delete", lambda cluster: calls.append(f"delete {cluster}"))
    return provider, calls


def test_a_node_slow_to_boot_gets_the_cluster_created_again(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    provider, calls = _provider(monkeypatch, [SLOW, None])
    provider._create_nodes("c1", Path("/tmp/c1.yaml"))
    assert calls == ["create", "delete c1", "create"]
    assert "did not finish booting within kind's 30 s" in capsys.readouterr().err


def test_other_failures_and_the_last_slow_boot_are_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    provider, calls = _provider(monkeypatch, ["ERROR: port is already allocated"])
    with pytest.raises(ClusterCommandError, match="port is already allocated"):
        provider._create_nodes("c1", Path("/tmp/c1.yaml"))
    assert calls == ["create"]
    provider, calls = _provider(monkeypatch, [SLOW] * kind.NODE_BOOT_ATTEMPTS)
    with pytest.raises(ClusterCommandError, match="could not find a log line"):
        provider._create_nodes("c1", Path("/tmp/c1.yaml"))
    assert calls.count("create") == kind.NODE_BOOT_ATTEMPTS
