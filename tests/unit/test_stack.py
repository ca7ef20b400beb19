"""The local stack's driver without a cluster: its refusals and how it reports Pulumi's failures."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.stack import PASSPHRASE_ENV, diagnostics, passphrase


FAILED_UP = """Updating (local):
 +  pulumi-python:dynamic:Resource local-gitops-root-app creating (0s)
Diagnostics:
  pulumi-python:dynamic:Resource (local-gitops-root-app):
    error: Application argocd/ml-platform-local-root: apply refused: namespaces "argocd" not found

Outputs:
    gitops_repo: "/tmp/repo.git"

Resources:
    1 errored
"""


def test_a_failed_operation_reports_pulumis_diagnostics_only() -> None:
    shown = diagnostics(FAILED_UP)
    assert shown.startswith("Diagnostics:")
    assert 'apply refused: namespaces "argocd" not found' in shown
    assert "Outputs:" not in shown and "creating" not in shown


def test_stack_commands_refuse_a_cloud_environment() -> None:
    result = CliRunner().invoke(app, ["stack", "preview", "dev"])
    assert result.exit_code == 1
    assert "dev is a cloud environment: use `pulumi preview|destroy -s dev`" in result.output


def test_stack_commands_name_an_unknown_provider() -> None:
    result = CliRunner().invoke(app, ["stack", "destroy", "local", "--provider", "minikube"])
    assert result.exit_code == 1 and "unknown provider 'minikube'" in result.output


def test_passphrase_comes_from_the_environment_else_a_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from-the-env")
    assert passphrase(tmp_path) == "from-the-env" and not (tmp_path / ".passphrase").exists()
    monkeypatch.delenv(PASSPHRASE_ENV)
    first = passphrase(tmp_path)
    assert len(first) >= 32 and passphrase(tmp_path) == first  # generated once, then reused
    mode = stat.S_IMODE(os.stat(tmp_path / ".passphrase").st_mode)
    assert mode == 0o600


def test_argo_cd_clones_from_loopback_or_from_the_clusters_git_server(tmp_path: Path) -> None:
    from environments import load_environment
    from harness.stack import LocalSite, write_argocd_manifests

    env = load_environment("local", {"gitops": {"repo_url": str(tmp_path / "repos" / "local.git")}})
    on_host = LocalSite.of(env, cluster="c1", state=tmp_path, git_port=4242)
    in_cluster = LocalSite.of(env, cluster="c1", state=tmp_path, git_port=4242, in_cluster=True)
    assert on_host.clone_url == "git://127.0.0.1:4242/local.git"  # Argo CD as host processes (kwok)
    assert in_cluster.clone_url == "git://c1-git:9418/local.git"  # pods: the git container on kind's network
    kinds = {line.removeprefix("kind: ") for line in write_argocd_manifests(
        tmp_path / "m.yaml", env=env, in_cluster=True).read_text().splitlines() if line.startswith("kind: ")}
    assert {"StatefulSet", "Deployment", "CustomResourceDefinition"} <= kinds
    kinds = {line.removeprefix("kind: ") for line in write_argocd_manifests(
        tmp_path / "m.yaml", env=env, in_cluster=False).read_text().splitlines() if line.startswith("kind: ")}
    assert "Deployment" not in kinds and "CustomResourceDefinition" in kinds
