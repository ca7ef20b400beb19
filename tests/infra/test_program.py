"""The program as a user meets it: stack name -> env file, outputs, counts, `local`, the offline plan."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from argocd.render import service_accounts
from environments import Environment, load_environment
from infra.mocks import Run, run_program
from infra.network import nat_count
from infra.platform import PROJECT

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]


def test_resource_counts_follow_the_env(env: Environment, run: Run) -> None:
    net, counts = env.aws.network, run.counts()
    workloads = len(service_accounts(env))
    expected = {
        "aws:ec2/vpc:Vpc": 1,
        "aws:ec2/subnet:Subnet": 2 * net.az_count,
        "aws:ec2/natGateway:NatGateway": nat_count(net.nat, net.az_count),
        "aws:ec2/eip:Eip": nat_count(net.nat, net.az_count),
        "aws:ec2/routeTable:RouteTable": 1 + net.az_count,
        "aws:ec2/flowLog:FlowLog": 1 if net.flow_logs else 0,
        "eks:index:Cluster": 1,
        "aws:eks/nodeGroup:NodeGroup": len(env.node_groups),
        # one per workload, the autoscaler's, the node role, the flow-logs role
        "aws:iam/role:Role": workloads + 2 + (1 if net.flow_logs else 0),
        "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            workloads + 1 if env.aws.cluster.identity == "pod_identity" else 0,
        "aws:ecr/repository:Repository": 2,
        "aws:s3/bucket:Bucket": 2,
        "aws:kms/key:Key": 2,
        # Argo CD, the Cluster Autoscaler, the NVIDIA device plugin where there are GPUs
        "kubernetes:helm.sh/v3:Release": 2 + (1 if env.has_gpu else 0),
        "pulumi-python:dynamic:Resource": 1,
    }
    assert {t: counts.get(t, 0) for t in expected} == expected
    components = {r.type for r in run.resources if r.type.startswith("mlops:infra:")}
    assert components == {f"mlops:infra:{c}" for c in (
        "MlPlatform", "Tagging", "Network", "Cluster", "NodeGroups", "RegistriesAndStorage", "Identity",
        "GitOpsBootstrap")}


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
    assert len(out["public_subnet_ids"]) == len(out["private_subnet_ids"]) == env.aws.network.az_count
    assert out["cluster_name"] == env.aws.cluster.name
    assert out["cluster_endpoint"].startswith("https://") and env.aws.region in out["cluster_endpoint"]
    assert out["oidc_issuer"].startswith(f"oidc.eks.{env.aws.region}.amazonaws.com/id/")
    assert json.loads(out["kubeconfig"])["clusters"][0]["cluster"]["server"] == out["cluster_endpoint"]
    assert sorted(out["node_group_names"]) == sorted(f"{env.aws.cluster.name}-{g}" for g in env.node_groups)
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
    assert run.one("eks:index:Cluster").inputs["name"] == staging.aws.cluster.name
    assert run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"] == staging.aws.network.vpc_cidr


def test_pulumi_project_file() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"


def test_local_stack_without_its_config_names_the_missing_keys() -> None:
    from infra.errors import LocalStackError

    with pytest.raises(LocalStackError, match="needs stack config mlops:kubeconfig, mlops:argocdManifests"):
        run_program(load_environment("local"))


def _cli(*args: str):
    from harness.cli import app

    return CliRunner().invoke(app, ["infra", *args], catch_exceptions=False)


def test_offline_plan_prints_tree_counts_and_key_inputs() -> None:
    result = _cli("plan", "prod")
    assert result.exit_code == 0, result.output
    out = result.output
    prod = load_environment("prod")
    assert prod.aws.network.vpc_cidr in out
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
