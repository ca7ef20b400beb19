"""The program as a user meets it: stack name -> env file, outputs, counts, `local`, the offline plan."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from apps.addons.charts import CHARTS, calling_aws
from argocd.render import service_accounts
from environments import Environment, load_environment
from infra.mocks import Run, run_program
from infra.network import nat_count
from infra.plan import build_report
from infra.platform import PROJECT
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]


def test_resource_counts_follow_the_env(env: Environment, run: Run) -> None:
    net, counts = aws(env).network, run.counts()
    workloads = len(service_accounts(env))
    addons = len(calling_aws(env))
    efs, secrets = env.addons.efs_csi_driver.enabled, env.addons.external_secrets.enabled
    expected = {
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/subnet:Subnet": 2 * net.az_count,
        "aws:ec2/natGateway:NatGateway": nat_count(net.nat, net.az_count),
        "aws:ec2/eip:Eip": nat_count(net.nat, net.az_count),
        "aws:ec2/routeTable:RouteTable": 1 + net.az_count,
        "aws:ec2/flowLog:FlowLog": 1 if net.flow_logs else 0,
        "eks:index:Cluster": 1,
        "aws:eks/nodeGroup:NodeGroup": len(env.node_groups),
        # one per workload, one per add-on that calls AWS, the node role, the flow-logs role
        "aws:iam/role:Role": workloads + addons + 1 + (1 if net.flow_logs else 0),
        "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            workloads + addons if aws(env).cluster.identity == "pod_identity" else 0,
        "aws:ecr/repository:Repository": 2,
        "aws:s3/bucket:Bucket": 2,
        # EKS secrets, storage, and the shared file system's and the app secrets' own where enabled
        "aws:kms/key:Key": 2 + efs + secrets,
        "aws:efs/fileSystem:FileSystem": int(efs),
        "aws:efs/mountTarget:MountTarget": net.az_count if efs else 0,
        "aws:secretsmanager/secret:Secret": int(secrets),
        # the Pod Identity agent and the VPC CNI
        "aws:eks/addon:Addon": 2,
        # Argo CD alone: the add-ons are Argo CD's to install
        "kubernetes:helm.sh/v3:Release": 1,
        "pulumi-python:dynamic:Resource": 1,
    }
    assert {t: counts.get(t, 0) for t in expected} == expected
    components = {r.type for r in run.resources if r.type.startswith("mlops:infra:")}
    assert components == {f"mlops:infra:{c}" for c in (
        "MlPlatform", "Tagging", "Network", "Cluster", "NodeGroups", "RegistriesAndStorage", "SharedFileSystem",
        "Identity", "PlatformAddons", "GitOpsBootstrap")}


def test_children_are_parented_and_named_after_their_component(run: Run) -> None:
    for r in run.resources:
        if r.type == "mlops:infra:MlPlatform":
            assert r.parent is None
            continue
        assert r.parent is not None, f"{r.name} has no parent"
        assert r.name.startswith(f"{r.parent}-") or r.parent == run.env, f"{r.name} not named after {r.parent}"


def test_stack_outputs(env: Environment, run: Run) -> None:
    out = run.outputs
    assert out["vpc_id"].startswith("vpc-")
    assert len(out["public_subnet_ids"]) == len(out["private_subnet_ids"]) == aws(env).network.az_count
    assert out["cluster_name"] == aws(env).cluster.name
    assert out["cluster_endpoint"].startswith("https://") and aws(env).region in out["cluster_endpoint"]
    assert out["oidc_issuer"].startswith(f"oidc.eks.{aws(env).region}.amazonaws.com/id/")
    assert json.loads(out["kubeconfig"])["clusters"][0]["cluster"]["server"] == out["cluster_endpoint"]
    assert sorted(out["node_group_names"]) == sorted(f"{aws(env).cluster.name}-{g}" for g in env.node_groups)
    assert set(out["ecr_repository_urls"]) == {"ml-inference-api", "ml-pipeline"}
    assert out["data_bucket"] == env.storage.data_uri.removeprefix("s3://").split("/")[0]
    assert out["models_bucket"] == env.storage.models_uri.removeprefix("s3://").split("/")[0]
    assert out["gitops_repo"] == env.gitops.repo_url
    assert "gitops_commit" in out


def test_only_the_kubeconfig_output_is_secret(run: Run) -> None:
    assert run.secret_outputs == {"kubeconfig"}


def test_stack_name_selects_the_environment_file() -> None:
    staging = load_environment("staging")
    run = run_program(staging, entry=lambda: runpy.run_path(str(ROOT / "__main__.py")))
    assert run.one("eks:index:Cluster").inputs["name"] == aws(staging).cluster.name
    assert run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == aws(staging).network.vpc_cidr


def test_pulumi_project_file() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"


def test_local_stack_without_its_config_names_the_missing_keys() -> None:
    """The program's entry (`__main__.py`) reads the local target from the stack's config."""
    from infra.errors import LocalStackError
    from infra.local import LocalTarget
    from infra.platform import deploy

    local = load_environment("local")
    with pytest.raises(LocalStackError, match="needs stack config mlops:kubeconfig, mlops:argocdManifests"):
        run_program(local, entry=lambda: deploy(local, LocalTarget.from_config()))


def _cli(*args: str):
    from harness.cli import app

    return CliRunner().invoke(app, ["infra", *args], catch_exceptions=False)


def test_offline_plan_prints_tree_counts_and_key_inputs() -> None:
    result = _cli("plan", "prod")
    assert result.exit_code == 0, result.output
    out = result.output
    prod = load_environment("prod")
    assert aws(prod).network.vpc_cidr in out
    assert "10.0.0.0/20" in out and "10.0.128.0/20" in out, "subnet CIDRs shown"
    assert "m5.2xlarge,m6i.2xlarge" in out and "g5.12xlarge" in out
    assert "nvidia.com/gpu=true:NO_SCHEDULE" in out
    gpu = prod.node_groups["gpu"]
    assert f"min {gpu.min_size} / desired {gpu.desired_size} / max {gpu.max_size}" in out
    assert "argo-cd 8.1.2" in out
    assert "resources per type" in out and "aws:ec2/natGateway:NatGateway" in out


def test_offline_plan_json_and_relaxed_notes() -> None:
    result = _cli("plan", "dev", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"]["aws:ec2/natGateway:NatGateway"] == 1
    assert any("aws.network.nat" in note for note in report["relaxed"])
    assert "kubeconfig" not in report["outputs"]
    routes = {r["name"]: r["summary"] for r in report["resources"] if r["type"] == "aws:ec2/route:Route"}
    assert routes["dev-network-private-1-default"] == "0.0.0.0/0 -> dev-network-nat-0", "single NAT for all AZs"


def test_offline_plan_lists_every_add_on_with_its_version_and_role() -> None:
    result = _cli("plan", "prod", "--json")
    assert result.exit_code == 0, result.output
    addons = {a["name"]: a for a in json.loads(result.output)["addons"]}
    prod = load_environment("prod")
    cluster = aws(prod).cluster.name
    assert [a for a in addons] == ["metrics-server", "prometheus-operator-crds", *[c.name for c in CHARTS], "vpc-cni"]
    assert addons["metrics-server"]["version"] == prod.addons.metrics_server.version
    assert addons["prometheus-operator-crds"]["version"] == prod.addons.prometheus_crds.version
    calling = {name for name, _, _ in calling_aws(prod)}
    for chart in CHARTS:
        a = addons[chart.name]
        assert (a["version"], a["enabled"]) == (chart.version(prod), True)
        assert a["role"] == (f"{cluster}-{chart.name}"[:64] if chart.name in calling else "no AWS access")
    assert addons["vpc-cni"]["note"] == "network policy on"
    human = _cli("plan", "prod").output
    assert "add-ons" in human and prod.addons.cluster_autoscaler.chart_version in human


def test_offline_plan_says_which_add_ons_are_off_and_why() -> None:
    env = load_environment("dev", {"addons": {"external_secrets": {"enabled": False},
                                              "vpc_cni": {"network_policy": False}}})
    cpu_only = env.model_copy(update={"node_groups": {"cpu": env.node_groups["cpu"]}})
    addons = {a.name: a for a in build_report(cpu_only).addons}
    secrets = addons["external-secrets"]
    assert not secrets.enabled and secrets.role == "no AWS access"
    assert secrets.note == "off: addons.external_secrets.enabled is false"
    assert not addons["nvidia-device-plugin"].enabled and "needs it" in addons["nvidia-device-plugin"].note
    assert addons["vpc-cni"].note == "network policy OFF"
    assert addons["aws-load-balancer-controller"].enabled


def test_offline_plan_errors_in_one_line() -> None:
    result = CliRunner().invoke(__import__("harness.cli", fromlist=["app"]).app, ["infra", "plan", "nosuch"])
    assert result.exit_code == 1
    assert "no such environment 'nosuch'" in result.output
    bad = _cli_bad_prod()
    assert bad.exit_code == 1 and "aws.network.nat" in bad.output


def _cli_bad_prod():
    from harness.cli import app

    path = ROOT / "tests" / "infra" / "fixtures"
    return CliRunner().invoke(app, ["infra", "plan", str(path / "prod-single-nat.yaml")])


def test_offline_plan_local() -> None:
    result = _cli("plan", "local")
    assert result.exit_code == 0
    assert "no cloud resources" in result.output
