"""The provider interface: create-or-reuse, kubeconfig, delete, all idempotent; nothing left running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from environments import load_environment
from harness.clusters.kube import client_for, serving
from harness.clusters.providers import ClusterProvider, ExistingProvider, KwokProvider
from harness.clusters.session import cluster_session

pytestmark = pytest.mark.e2e


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


@pytest.fixture
def kwok(cluster_provider: ClusterProvider) -> KwokProvider:
    if not isinstance(cluster_provider, KwokProvider):
        pytest.skip(f"provider lifecycle is checked on kwok clusters; this run uses --cluster={cluster_provider.name}")
    return cluster_provider


def test_kwok_cluster_lifecycle_is_idempotent_and_leaves_no_process(kwok: KwokProvider) -> None:
    env = load_environment("local")
    name = f"mlops-lifecycle-{os.getpid()}"
    with cluster_session(kwok, name, env=env) as first:
        assert first.created and first.simulated
        assert serving(client_for(first.kubeconfig))
        again = kwok.create(name, env=env)
        assert not again.created, "a second create must reuse the running cluster"
        assert serving(client_for(again.kubeconfig))
        assert _processes_mentioning(f"/clusters/{name}/"), "expected the control plane's processes while it runs"
    assert not kwok.exists(name)
    assert _processes_mentioning(f"/clusters/{name}/") == []
    kwok.delete(name)  # deleting what is gone is a no-op


def test_existing_provider_uses_any_kubeconfig_and_never_deletes(deployed_env, tmp_path: Path) -> None:
    target = deployed_env("local").cluster
    existing = ExistingProvider(kubeconfig=target.kubeconfig)
    assert existing.unavailable_reason() is None
    info = existing.create("any", env=load_environment("local"))
    assert (info.created, info.provider) == (False, "existing")
    existing.delete("any")
    assert serving(client_for(target.kubeconfig)), "the existing provider must never delete the cluster"
    missing = ExistingProvider(kubeconfig=tmp_path / "nope")
    assert "does not exist" in (missing.unavailable_reason() or "")
