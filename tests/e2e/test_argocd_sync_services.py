"""The pieces of the local GitOps loop on their own: the git server serves what the publisher
pushed, Redis answers only with its password, both are gone after their block, and Argo CD's
CRDs and configuration come from the pinned module."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from argocd.publish import publish
from argocd.render import render_environment
from environments import load_environment
from harness.argocd_local import upstream
from harness.argocd_local.gitserver import git_daemon
from harness.ports import accepting
from harness.argocd_local.redis import _pong, redis_server

pytestmark = pytest.mark.e2e


def test_git_server_serves_what_was_published(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    env = load_environment("local", {"gitops": {"repo_url": str(repos / "gitops.git")}})
    with git_daemon(repos) as server:
        url = server.url("gitops.git")
        tree = render_environment(env, repo_url=url)
        result = publish(env, tree)
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "--quiet", "--branch", env.gitops.branch, url, str(clone)], check=True, timeout=60)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True).stdout.strip()
        assert head == result.commit
        for path, data in tree.items():
            assert (clone / env.gitops.path / path).read_bytes() == data, path
        port = server.port
    assert not accepting(port), "git daemon still listening after its block"


def test_git_server_refuses_pushes(tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    subprocess.run(["git", "init", "--quiet", "--bare", str(repos / "r.git")], check=True)
    work = tmp_path / "work"
    subprocess.run(["git", "init", "--quiet", str(work)], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet", "--allow-empty", "-m", "x"], cwd=work, check=True)
    with git_daemon(repos) as server:
        push = subprocess.run(["git", "push", server.url("r.git"), "HEAD:refs/heads/main"], cwd=work, capture_output=True, text=True, timeout=60)
    assert push.returncode != 0, "the git server accepted a push: it must be read-only"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed (harness/setup.sh installs it)")
def test_redis_answers_only_with_its_password(tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        assert _pong(redis.port, redis.password)
        assert not _pong(redis.port, "not-" + redis.password)
        assert redis.password not in repr(redis)
    assert not _pong(redis.port, redis.password), "redis still answering after its block"


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed: the manifests come from Argo CD's Go module")
def test_argocd_manifests_come_from_the_pinned_module() -> None:
    kinds = {c["spec"]["names"]["kind"] for c in upstream.crds()}
    assert {"Application", "AppProject"} <= kinds
    config = upstream.base_config(namespace="argocd-test", overrides={"argocd-cm": {"timeout.reconciliation": "30s"}})
    by_name = {c["metadata"]["name"]: c for c in config}
    assert {"argocd-cm", "argocd-rbac-cm", "argocd-secret"} <= set(by_name)
    assert all(c["metadata"]["namespace"] == "argocd-test" for c in config)
    assert by_name["argocd-cm"]["data"]["timeout.reconciliation"] == "30s"
    # Argo CD finds its settings by this label: the upstream objects must carry it.
    assert all(c["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd" for c in config)
