"""Destroy order: the apps, then the root app alone, then everything in the cluster, then (prod) protections, then the rest."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from argocd import catalog
from argocd.objects import application_name, root_name
from environments import Environment
from infra.destroy import destroy_steps, urn
from infra.mocks import Run
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

URN = re.compile(r"'(urn:pulumi:[^']+)'")


def _targets(command: str) -> list[str]:
    return URN.findall(command)


def test_the_apps_go_before_the_addons_that_clean_up_after_them(env: Environment, run: Run) -> None:
    """An app's load balancers and volumes are deleted by the load balancer controller and the CSI
    drivers: the apps' Applications go first, with the root app's auto-sync off so it recreates none."""
    commands = destroy_steps(env, run)[0].commands
    stop, delete = commands[1], commands[2]
    assert root_name(env) in stop and "/spec/syncPolicy/automated" in stop and '"op": "remove"' in stop
    assert delete.split("delete applications.argoproj.io ")[1].split(" --wait")[0].split() == \
        [application_name(env, a.name) for a in reversed(catalog.enabled_apps(env))]
    assert not any(application_name(env, c.name) in delete for c in catalog.enabled_charts(env))
    assert "--wait" in delete and f"-n {env.gitops.argocd_namespace}" in delete


def test_steps_target_the_root_app_then_everything_in_cluster(env: Environment, run: Run) -> None:
    steps = destroy_steps(env, run)[1:]
    first, second = (_targets(c) for s in steps[:2] for c in s.commands)
    root = run.one("kubernetes:argoproj.io/v1alpha1:Application")
    assert first == [urn(run, root)]
    in_cluster = {urn(run, r) for r in run.resources if r.custom and r.type.startswith("kubernetes:")}
    assert set(second) == in_cluster - set(first), "after step 2 nothing needs the Kubernetes API"
    assert steps[-1].commands == (f"pulumi destroy --stack {env.name}",)
    protection = [s for s in steps if "deletion protection" in s.title]
    assert bool(protection) is env.production
    if env.production:
        assert any("--no-deletion-protection" in c and aws(env).cluster.name in c for c in protection[0].commands)


def test_urns_chain_every_parent_type(run: Run) -> None:
    root = run.one("kubernetes:argoproj.io/v1alpha1:Application")
    assert urn(run, root) == (
        f"urn:pulumi:{run.env}::ml-platform::mlops:infra:MlPlatform$mlops:infra:GitOpsBootstrap$"
        f"kubernetes:argoproj.io/v1alpha1:Application::{root.name}")


def test_production_storage_outlives_the_stack(env: Environment, run: Run) -> None:
    storage = [r for r in run.resources if r.parent == f"{env.name}-storage"]
    # the shared file system's data and its key, and the app secret and its key (not the mount targets
    # and security group, which would keep the VPC from being deleted)
    kept = {f"{env.name}-sharedfs-{s}" for s in ("key", "key-alias", "fs", "backup")} | {
        f"{env.name}-addons-{s}" for s in ("secretsmanager-key", "secretsmanager-key-alias", "inference-api-secret")}
    assert storage and kept <= {r.name for r in run.resources}
    for r in storage + [r for r in run.resources if r.name in kept]:
        assert r.retain_on_delete is env.production, f"{r.name}: retain_on_delete should be {env.production}"
    others = [r for r in run.resources if r.custom and r.parent != f"{env.name}-storage" and r.name not in kept]
    assert not [r.name for r in others if r.retain_on_delete]


def test_destroy_order_command() -> None:
    from harness.cli import app

    result = CliRunner().invoke(app, ["infra", "destroy-order", "dev"])
    assert result.exit_code == 0, result.output
    assert "1. Delete the apps while their add-ons still run" in result.output
    assert "2. Delete the root application" in result.output
    assert "pulumi destroy --stack dev --target 'urn:pulumi:dev::ml-platform::" in result.output
    local = CliRunner().invoke(app, ["infra", "destroy-order", "local"])
    assert local.exit_code == 1 and "no aws block" in local.output
