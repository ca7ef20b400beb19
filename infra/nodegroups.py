"""Node groups: one EKS managed node group per entry of the environment's `node_groups`,
and the role their nodes run as.

CPU groups use the AL2023 standard AMI, GPU groups the AL2023 NVIDIA AMI; labels, taints,
capacity type and sizes come from the environment file. After creation the desired size
belongs to the Cluster Autoscaler: `ignore_changes` on `scalingConfig.desiredSize`, set on
the `aws.eks.NodeGroup` itself because an ignore on a component is not passed down
(pulumi/pulumi-eks#709, #1293). The autoscaler and the NVIDIA device plugin are add-ons Argo
CD installs (`apps/addons/charts.py`); the tags here are what the autoscaler discovers, and
its role is the add-ons' (`infra/addons.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# One definition of a group's EKS name: the device plugin's node affinity selects by it.
from apps.addons.charts import node_group_name
from environments.model import NodeGroup as NodeGroupSpec
from infra import policies

TOKEN = "mlops:infra:NodeGroups"
AMI_TYPES = {"cpu": "AL2023_x86_64_STANDARD", "gpu": "AL2023_x86_64_NVIDIA"}
CAPACITY_TYPES = {"on_demand": "ON_DEMAND", "spot": "SPOT"}
TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy")
IGNORED_BY_PULUMI = ["scalingConfig.desiredSize"]


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


@dataclass(frozen=True)
class NodeGroupsArgs:
    cluster_name: pulumi.Input[str]
    cluster_name_literal: str
    subnet_ids: pulumi.Input[list[str]]
    groups: dict[str, NodeGroupSpec]


class NodeGroups(pulumi.ComponentResource):
    names: pulumi.Output[list[str]]
    node_role_arn: pulumi.Output[str]

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

        self.names = pulumi.Output.all(*[g.node_group_name for g in groups])
        self.node_role_arn = role.arn
        self.register_outputs({"names": self.names, "node_role_arn": self.node_role_arn})
