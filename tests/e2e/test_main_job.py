"""The README's main job, `mlops up local`, end to end on a throwaway GitOps repo, stack and cluster."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from environments import load_environment
from harness.ports import free_port
from harness.clusters.providers import KwokProvider
from harness.containers.settings import settings_from_env
from harness.up import up

pytestmark = pytest.mark.e2e


def test_up_publishes_deploys_and_answers(tmp_path: Path, mlops_docker: object) -> None:
    repo = tmp_path / "gitops.git"
    env = load_environment("local", overrides={"gitops": {"repo_url": str(repo)}})
    cluster = f"mlops-up-{tmp_path.name[-8:].lower().replace('_', '-')}"
    try:
        # Its own container session, as a separate `mlops up` process would be: the test session's
        # store and images are neither reused nor removed by it.
        summary = up(env, provider="kwok", cluster=cluster, settings=settings_from_env(), state=tmp_path / "stacks",
                     git_port=free_port())
    finally:
        KwokProvider().delete(cluster)
    outcomes = {r.name: r.detail for r in summary}
    seconds = {r.name: r.seconds for r in summary}
    # Each step times its own work: the images step includes checking (or building) the images
    # and starting the store, which never takes no time at all.
    assert seconds["images"] >= 0.1 and seconds["tools"] >= 0, seconds
    assert list(outcomes) == ["tools", "images", "kwok cluster", "pulumi up", "argo cd sync", "inference API", "batch pipeline"]
    assert all(r.ok for r in summary), summary
    assert "create; GitOps commit" in outcomes["pulumi up"]
    synced = re.search(r"(\d+)/(\d+) Applications Synced", outcomes["argo cd sync"])
    assert synced and synced.group(1) == synced.group(2), outcomes["argo cd sync"]
    assert "Deployments available" in outcomes["argo cd sync"]
    assert "succeeded" in outcomes["batch pipeline"]
    # The tree the cluster got is the commit on the env's branch, under the env's path.
    files = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", env.gitops.branch],
                           check=True, capture_output=True, text=True).stdout.split()
    assert f"{env.gitops.path}/bootstrap/root-application.yaml" in files
    assert any(f.startswith(f"{env.gitops.path}/apps/inference-api/") for f in files)
