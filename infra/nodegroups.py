"""Node groups: one EKS managed node group per entry of the environment's `node_groups`,
the NVIDIA device plugin on the GPU groups, and the Cluster Autoscaler that owns their size.

CPU groups use the AL2023 standard AMI, GPU groups the AL2023 NVIDIA AMI; labels, taints,
capacity type and sizes come from the environment file. After creation the desired size
belongs to the cluster autoscaler: `ignore_changes` on `scalingConfig.desiredSize`, set on
the `aws.eks.NodeGroup` itself because an ignore on a component is not passed down
(pulumi/pulumi-eks#709, #1293).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from environments.model import NodeGroup as NodeGroupSpec
from infra import policies

TOKEN = "mlops:infra:NodeGroups"
AMI_TYPES = {"cpu": "AL2023_x86_64_STANDARD", "gpu": "AL2023_x86_64_NVIDIA"}
CAPACITY_TYPES = {"on_demand": "ON_DEMAND", "spot": "SPOT"}
TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy")
IGNORED_BY_PULUMI = ["scalingConfig.desiredSize"]
DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"
AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"


def node_group_name(cluster_name: str, group: str) -> str:
    return f"{cluster_name}-{group}"


def autoscaler_tags(cluster_name: str, spec: NodeGroupSpec) -> dict[str, str]:
    """Auto-discovery tags, and node templates so the autoscaler can scale a group up from zero."""
    tags = {"k8s.io/cluster-autoscaler/enabled": "true", f"k8s.io/cluster-autoscaler/{cluster_name}": "owned"}
    for key, value in spec.labels.items():
        tags[f"k8s.io/cluster-autoscaler/node-template/label/{key}"] = value
    for taint in spec.taints:
        tags[f"k8s.io/cluster-autoscaler/node-template/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    if spec.kind == "gpu":
        tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] = str(spec.shape.gpus)
    return tags


def device_plugin_values(*, cluster_name: str, gpu_groups: dict[str, NodeGroupSpec]) -> dict[str, object]:
    """Run the plugin only on the GPU groups (the chart's default affinity expects NFD labels we do not run)."""
    tolerations = [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
                   for t in {t for g in gpu_groups.values() for t in g.taints}]
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
            "matchExpressions": [{"key": NODEGROUP_LABEL, "operator": "In",
                                  "values": sorted(node_group_name(cluster_name, g) for g in gpu_groups)}],
        }]}}},
        "tolerations": sorted(tolerations, key=lambda t: (t["key"], t["effect"])),
        "priorityClassName": "system-node-critical",
    }


def autoscaler_values(*, cluster_name: str, region: str, role_arn: str | None) -> dict[str, object]:
    annotations = {"eks.amazonaws.com/role-arn": role_arn} if role_arn else {}
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "rbac": {"serviceAccount": {"create": True, "name": AUTOSCALER_SERVICE_ACCOUNT, "annotations": annotations}},
        # GPU groups scale from zero: pick the group that wastes least, keep similar groups balanced.
        "extraArgs": {"expander": "least-waste", "balance-similar-node-groups": "true",
                      "skip-nodes-with-system-pods": "false"},
        "priorityClassName": "system-cluster-critical",
    }


@dataclass(frozen=True)
class NodeGroupsArgs:
    cluster_name: pulumi.Input[str]
    cluster_name_literal: str
    region: str
    subnet_ids: pulumi.Input[list[str]]
    groups: dict[str, NodeGroupSpec]
    device_plugin_chart_version: str
    autoscaler_chart_version: str
    # How the autoscaler's pod gets its role (the environment's identity mode).
    identity_mode: Literal["pod_identity", "irsa"]
    account_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    kubernetes_provider: k8s.Provider | None = None


class NodeGroups(pulumi.ComponentResource):
    names: pulumi.Output[list[str]]
    node_role_arn: pulumi.Output[str]
    autoscaler_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NodeGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(f"{name}-node-role", assume_role_policy=policies.as_json(
            policies.service_trust("ec2.amazonaws.com")), opts=child)
        attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=role.name,
                                         policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=child)
            for policy in NODE_POLICIES
        ]

        groups = []
        for group, spec in args.groups.items():
            groups.append(aws.eks.NodeGroup(
                f"{name}-{group}",
                cluster_name=args.cluster_name,
                node_group_name=node_group_name(args.cluster_name_literal, group),
                node_role_arn=role.arn,
                subnet_ids=args.subnet_ids,
                instance_types=list(spec.instance_types),
                capacity_type=CAPACITY_TYPES[spec.capacity],
                ami_type=AMI_TYPES[spec.kind],
                disk_size=spec.disk_size_gb,
                labels=dict(spec.labels),
                taints=[aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=TAINT_EFFECTS[t.effect])
                        for t in spec.taints],
                scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                    min_size=spec.min_size, desired_size=spec.desired_size, max_size=spec.max_size),
                update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                tags=autoscaler_tags(args.cluster_name_literal, spec),
                opts=pulumi.ResourceOptions(parent=self, depends_on=attachments, ignore_changes=IGNORED_BY_PULUMI),
            ))

        gpu_groups = {g: s for g, s in args.groups.items() if s.kind == "gpu"}
        if gpu_groups and args.kubernetes_provider is not None:
            k8s.helm.v3.Release(
                f"{name}-nvidia-device-plugin",
                name="nvidia-device-plugin",
                chart="nvidia-device-plugin",
                version=args.device_plugin_chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DEVICE_PLUGIN_REPO),
                namespace="kube-system",
                values=device_plugin_values(cluster_name=args.cluster_name_literal, gpu_groups=gpu_groups),
                opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider, depends_on=groups),
            )

        self.autoscaler_role_arn = self._autoscaler(name, args, groups)
        self.names = pulumi.Output.all(*[g.node_group_name for g in groups])
        self.node_role_arn = role.arn
        self.register_outputs({"names": self.names, "node_role_arn": self.node_role_arn,
                               "autoscaler_role_arn": self.autoscaler_role_arn})

    def _autoscaler(self, name: str, args: NodeGroupsArgs, groups: list[aws.eks.NodeGroup]) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-autoscaler",
            name=f"{args.cluster_name_literal}-cluster-autoscaler"[:64],
            assume_role_policy=policies.as_json(policies.workload_trust(
                mode=args.identity_mode, account_id=args.account_id, cluster_name=args.cluster_name,
                oidc_provider_arn=args.oidc_provider_arn, oidc_issuer=args.oidc_issuer,
                namespace=AUTOSCALER_NAMESPACE, service_account=AUTOSCALER_SERVICE_ACCOUNT)),
            opts=child,
        )
        aws.iam.RolePolicy(f"{name}-autoscaler-scale", role=role.id,
                           policy=policies.as_json(policies.cluster_autoscaler(args.cluster_name_literal)), opts=child)
        if args.identity_mode == "pod_identity":
            aws.eks.PodIdentityAssociation(f"{name}-autoscaler-association", cluster_name=args.cluster_name,
                                           namespace=AUTOSCALER_NAMESPACE, service_account=AUTOSCALER_SERVICE_ACCOUNT,
                                           role_arn=role.arn, opts=child)
        if args.kubernetes_provider is not None:
            irsa = args.identity_mode == "irsa"
            k8s.helm.v3.Release(
                f"{name}-cluster-autoscaler",
                name="cluster-autoscaler",
                chart="cluster-autoscaler",
                version=args.autoscaler_chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=AUTOSCALER_REPO),
                namespace=AUTOSCALER_NAMESPACE,
                values=role.arn.apply(lambda arn: autoscaler_values(
                    cluster_name=args.cluster_name_literal, region=args.region, role_arn=arn if irsa else None)),
                opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider, depends_on=groups),
            )
        return role.arn
