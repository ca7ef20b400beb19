"""Node objects shaped like an environment's node groups, for clusters whose nodes are simulated.

Pure builders: `node_manifests(env=...)` gives one Node per desired instance of every group,
spread round-robin over the environment's zones, with EKS's labels, the group's labels and
taints, and allocatable = instance shape minus the kubelet reservation EKS applies.
"""

from __future__ import annotations

import string
from typing import Any

from apps.addons.charts import calling_aws
from apps.cloud import CloudMetadata
from argocd.render import service_accounts
from environments.instances import INSTANCE_SHAPES, InstanceShape
from environments.model import Environment, NodeGroup

GPU_RESOURCE = "nvidia.com/gpu"
# kwok's controller manages the nodes that carry this annotation (kwokctl's default selector).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_GROUP_LABEL = "eks.amazonaws.com/nodegroup"


def allocatable(shape: InstanceShape, *, disk_size_gb: int) -> dict[str, str]:
    out = {
        "cpu": f"{shape.allocatable_cpu_millis}m",
        "memory": f"{shape.allocatable_memory_mib}Mi",
        "pods": str(shape.max_pods),
        "ephemeral-storage": f"{disk_size_gb * 9 // 10}Gi",
    }
    if shape.gpus:
        out[GPU_RESOURCE] = str(shape.gpus)
    return out


def capacity(shape: InstanceShape, *, disk_size_gb: int) -> dict[str, str]:
    out = {
        "cpu": str(shape.cpu),
        "memory": f"{shape.memory_gib}Gi",
        "pods": str(shape.max_pods),
        "ephemeral-storage": f"{disk_size_gb}Gi",
    }
    if shape.gpus:
        out[GPU_RESOURCE] = str(shape.gpus)
    return out


def zones(env: Environment) -> list[str]:
    """The environment's availability zones (`<region>a`, `b`, ...); one `local-a` without a cloud."""
    if env.aws is None:
        return ["local-a"]
    return [f"{env.aws.region}{letter}" for letter in string.ascii_lowercase[: env.aws.network.az_count]]


def region(env: Environment) -> str:
    return env.aws.region if env.aws else "local"


def _node(*, env: Environment, group_name: str, group: NodeGroup, index: int, zone: str) -> dict[str, Any]:
    instance_type = min(group.instance_types, key=lambda t: (INSTANCE_SHAPES[t].cpu, INSTANCE_SHAPES[t].memory_gib))
    shape = INSTANCE_SHAPES[instance_type]
    name = f"{env.name}-{group_name}-{index}"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": region(env),
        "topology.kubernetes.io/zone": zone,
        NODE_GROUP_LABEL: group_name,
        "eks.amazonaws.com/capacityType": group.capacity.upper(),
        "type": "kwok",
        **group.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": [t.model_dump() for t in group.taints]},
        "status": {
            "allocatable": allocatable(shape, disk_size_gb=group.disk_size_gb),
            "capacity": capacity(shape, disk_size_gb=group.disk_size_gb),
            "phase": "Running",
        },
    }


def node_manifests(*, env: Environment) -> list[dict[str, Any]]:
    """One Node per desired instance of each group, zones assigned round-robin within a group."""
    spread = zones(env)
    return [
        _node(env=env, group_name=name, group=group, index=i, zone=spread[i % len(spread)])
        for name, group in env.node_groups.items()
        for i in range(group.desired_size)
    ]


def simulated_cloud(env: Environment) -> CloudMetadata | None:
    """What a cloud environment's stack would hand its tree, for a local cluster that stands in
    for EKS: ids that name nothing real (the chart add-ons that use them never run here), and a
    role per service account where IRSA wants one on it."""
    if env.aws is None:
        return None
    holders = [name for name, _, _ in (*service_accounts(env), *calling_aws(env))]
    account = env.aws.account_id or "000000000000"
    return CloudMetadata(role_arns={h: f"arn:aws:iam::{account}:role/simulated-{h}" for h in holders},
                         vpc_id="vpc-simulated", file_system_id="fs-simulated")


def for_simulated_nodes(env: Environment) -> Environment:
    """`env` as a cluster of simulated nodes (kwok) can run it: without the add-ons that serve
    from a pod. metrics-server's aggregated API would be registered with no process behind it,
    and an unavailable API group stalls every namespace deletion ("discovery failed"). The HPAs
    then report no metrics, which the simulation explains (harness/argocd_local/simulation.py)."""
    addons = env.addons.model_copy(update={"metrics_server": env.addons.metrics_server.model_copy(
        update={"enabled": False})})
    return env.model_copy(update={"addons": addons})
