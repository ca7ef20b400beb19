"""Cluster and node groups: encryption, logging, access, and CPU/GPU groups as the env says."""

from __future__ import annotations

import json

import pytest

from apps.addons.charts import NODEGROUP_LABEL, device_plugin_values
from environments import Environment, load_environment
from infra.mocks import Run, run_program
from infra.nodegroups import AMI_TYPES, node_group_name
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}


def test_cluster_version_network_and_endpoint(env: Environment, run: Run) -> None:
    spec = aws(env).cluster
    c = run.one("eks:index:Cluster").inputs
    assert c["name"] == spec.name and c["version"] == spec.kubernetes_version
    assert c["vpcId"] == run.one("aws:ec2/vpc:Vpc").id
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["tier"] == "private"}
    assert set(c["privateSubnetIds"]) == private
    assert c["nodeAssociatePublicIpAddress"] is False
    assert c["skipDefaultNodeGroup"] is True
    assert c["endpointPrivateAccess"] is True
    assert c["endpointPublicAccess"] is spec.endpoint_public
    assert c.get("publicAccessCidrs", []) == (spec.public_access_cidrs if spec.endpoint_public else [])
    assert c["deletionProtection"] is spec.deletion_protection


def test_secrets_encrypted_with_rotating_kms_key(run: Run) -> None:
    c = run.one("eks:index:Cluster").inputs
    key = run.one("aws:kms/key:Key", "secrets-key")
    assert c["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True


def test_control_plane_logging_on_with_retention(env: Environment, run: Run) -> None:
    c = run.one("eks:index:Cluster")
    assert c.inputs["enabledClusterLogTypes"] == aws(env).cluster.log_types
    assert {"api", "audit", "authenticator"} <= set(c.inputs["enabledClusterLogTypes"])
    group = run.one("aws:cloudwatch/logGroup:LogGroup", "control-plane-logs")
    assert group.inputs["name"] == f"/aws/eks/{aws(env).cluster.name}/cluster"
    assert group.inputs["retentionInDays"] == aws(env).log_retention_days
    # The group exists before EKS would create its own never-expiring one.
    assert group.name in c.depends_on


def test_access_entries_oidc_and_pod_identity_agent(env: Environment, run: Run) -> None:
    c = run.one("eks:index:Cluster").inputs
    assert c["authenticationMode"] == "API", "access entries, not the aws-auth ConfigMap"
    assert c["createOidcProvider"] is True
    assert len(c.get("accessEntries") or {}) == len(aws(env).cluster.admin_principal_arns)
    addon = run.one("aws:eks/addon:Addon", "pod-identity-agent")
    assert addon.inputs["addonName"] == "eks-pod-identity-agent"
    assert addon.inputs["clusterName"] == aws(env).cluster.name


def test_admin_principals_become_access_entries(run_with) -> None:
    arn = "arn:aws:iam::123456789012:role/platform-admins"
    run = run_with("staging", {"aws": {"cluster": {"admin_principal_arns": [arn]}}})
    entries = run.one("eks:index:Cluster").inputs["accessEntries"]
    (entry,) = entries.values()
    assert entry["principalArn"] == arn
    (policy,) = entry["accessPolicies"].values()
    assert policy["policyArn"].endswith("AmazonEKSClusterAdminPolicy")
    assert policy["accessScope"]["type"] == "cluster"


def test_one_managed_group_per_env_group(env: Environment, run: Run) -> None:
    groups = {g.inputs["nodeGroupName"]: g for g in run.of_type(NODE_GROUP)}
    assert set(groups) == {node_group_name(aws(env).cluster.name, n) for n in env.node_groups}
    private = {s.id for s in run.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["tier"] == "private"}
    for name, spec in env.node_groups.items():
        g = groups[node_group_name(aws(env).cluster.name, name)]
        i = g.inputs
        assert i["instanceTypes"] == spec.instance_types
        assert i["capacityType"] == {"on_demand": "ON_DEMAND", "spot": "SPOT"}[spec.capacity]
        assert i["amiType"] == AMI_TYPES[spec.kind]
        assert i["diskSize"] == spec.disk_size_gb
        assert i["scalingConfig"] == {"minSize": spec.min_size, "desiredSize": spec.desired_size,
                                      "maxSize": spec.max_size}
        assert i.get("labels", {}) == spec.labels
        assert [(t["key"], t.get("value", ""), t["effect"]) for t in i.get("taints", [])] == [
            (t.key, t.value, EFFECTS[t.effect]) for t in spec.taints]
        assert set(i["subnetIds"]) == private, "nodes live in private subnets only"
        assert g.ignore_changes == ["scalingConfig.desiredSize"], "the autoscaler owns desired size"


def test_gpu_groups_tainted_labelled_nvidia_ami_and_min_as_env(env: Environment, run: Run) -> None:
    assert env.gpu_node_groups, "every shipped cloud environment has a GPU group"
    for name, spec in env.gpu_node_groups.items():
        g = run.one(NODE_GROUP, f"-{name}").inputs
        assert g["amiType"] == "AL2023_x86_64_NVIDIA"
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in g["taints"]
        assert g["labels"]["accelerator"] == "nvidia"
        assert g["scalingConfig"]["minSize"] == spec.min_size
        # scale-from-zero needs the autoscaler to know what a node of this group would offer
        tags = g["tags"]
        assert tags["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
        assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == str(spec.shape.gpus)
    for name in set(env.node_groups) - set(env.gpu_node_groups):
        g = run.one(NODE_GROUP, f"-{name}").inputs
        assert g["amiType"] == "AL2023_x86_64_STANDARD"
        assert not g.get("taints")


@pytest.mark.parametrize("name, expected_min", [("dev", 0), ("staging", 0), ("prod", 2)])
def test_gpu_minimum_follows_env_file(name: str, expected_min: int, run_with) -> None:
    run = run_with(name, {})
    assert run.one(NODE_GROUP, "-gpu").inputs["scalingConfig"]["minSize"] == expected_min


def test_device_plugin_affinity_selects_the_gpu_groups_the_program_creates(env: Environment, run: Run) -> None:
    # Argo CD installs the plugin; its affinity must name the very node groups Pulumi creates.
    values = device_plugin_values(cluster_name=aws(env).cluster.name, gpu_groups=env.gpu_node_groups)
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (expr,) = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert expr["key"] == NODEGROUP_LABEL
    gpu_amis = [g.inputs["nodeGroupName"] for g in run.of_type(NODE_GROUP) if g.inputs["amiType"] == AMI_TYPES["gpu"]]
    assert expr["values"] == sorted(gpu_amis) and gpu_amis


def test_no_add_on_is_a_pulumi_helm_release(env: Environment, run: Run) -> None:
    """Add-ons are the GitOps tree's (Argo CD installs them); Pulumi installs Argo CD alone."""
    (release,) = run.of_type("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "argo-cd"


def test_no_gpu_group_means_one_cpu_group_and_no_gpu_template_tags() -> None:
    dev = load_environment("dev")
    cpu_only = dev.model_copy(update={"node_groups": {"cpu": dev.node_groups["cpu"]}})
    run = run_program(cpu_only)
    (group,) = run.of_type(NODE_GROUP)
    assert group.inputs["amiType"] == AMI_TYPES["cpu"]
    assert not [t for t in group.inputs["tags"] if "nvidia.com/gpu" in t]


def test_cluster_autoscaler_role_scales_only_the_groups_tagged_as_this_clusters(env: Environment, run: Run) -> None:
    role = run.one("aws:iam/role:Role", "-addons-cluster-autoscaler")
    assert role.inputs["name"] == f"{aws(env).cluster.name}-cluster-autoscaler"
    doc = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "-addons-cluster-autoscaler-access").inputs["policy"])
    scale = next(s for s in doc["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"])
    ((tag, value),) = scale["Condition"]["StringEquals"].items()
    assert (tag, value) == (f"aws:ResourceTag/k8s.io/cluster-autoscaler/{aws(env).cluster.name}", "owned")
    # ... and every node group carries exactly that tag, so the autoscaler may scale them all
    key = tag.removeprefix("aws:ResourceTag/")
    assert all(g.inputs["tags"][key] == value for g in run.of_type(NODE_GROUP))
    discover = next(s for s in doc["Statement"] if s["Sid"] == "Discover")
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in discover["Action"]), "read-only on '*'"
    (assoc,) = [a for a in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if a.inputs["serviceAccount"] == "cluster-autoscaler"]
    assert assoc.inputs["namespace"] == "kube-system"
    assert assoc.inputs["roleArn"] == role.outputs["arn"]


def test_cluster_autoscaler_role_keeps_its_place_in_an_existing_stack(env: Environment, run: Run) -> None:
    """The role moved from NodeGroups to the add-ons: aliased, so a stack keeps (not replaces) it and its
    association, whose fixed name and service account a replacement would collide with."""
    role = run.one("aws:iam/role:Role", "-addons-cluster-autoscaler")
    assert role.parent == f"{env.name}-addons"
    assert role.aliases == [(f"{env.name}-nodes-autoscaler", f"{env.name}-nodes")]
    if aws(env).cluster.identity == "pod_identity":
        assoc = run.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "-addons-cluster-autoscaler-association")
        assert assoc.aliases == [(f"{env.name}-nodes-autoscaler-association", f"{env.name}-nodes")]
    assert not [r.name for r in run.of_type("aws:iam/role:Role") if r.parent == f"{env.name}-nodes"
                and r.name != f"{env.name}-nodes-node-role"], "NodeGroups holds only the node role"


def test_cluster_autoscaler_under_irsa_trusts_its_service_account(run_with) -> None:
    run = run_with("staging", {"aws": {"cluster": {"identity": "irsa"}}})
    role = run.one("aws:iam/role:Role", "-addons-cluster-autoscaler")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert list(trust["Condition"]["StringEquals"].values())[0] == "system:serviceaccount:kube-system:cluster-autoscaler"
