"""Simulated nodes are shaped like the environment's node groups: counts, zones, labels, taints, allocatable."""

from __future__ import annotations

from collections import Counter

import pytest

from environments import load_environment
from environments.instances import INSTANCE_SHAPES
from harness.clusters.nodes import GPU_RESOURCE, node_manifests, zones
from harness.clusters.providers.kind import kind_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("env_name", ["local", "dev", "staging", "prod"])
def test_one_node_per_desired_instance_with_the_groups_labels_and_taints(env_name: str) -> None:
    env = load_environment(env_name)
    nodes = node_manifests(env=env)
    per_group = Counter(n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] for n in nodes)
    assert per_group == {name: g.desired_size for name, g in env.node_groups.items() if g.desired_size}
    for node in nodes:
        group = env.node_groups[node["metadata"]["labels"]["eks.amazonaws.com/nodegroup"]]
        assert group.labels.items() <= node["metadata"]["labels"].items()
        assert node["spec"]["taints"] == [t.model_dump() for t in group.taints]
        gpus = node["status"]["allocatable"].get(GPU_RESOURCE)
        assert (gpus is not None) == (group.kind == "gpu")
    assert len({n["metadata"]["name"] for n in nodes}) == len(nodes)


def test_nodes_spread_over_the_environments_zones() -> None:
    env = load_environment("prod")
    assert env.aws is not None
    cpu_zones = {
        n["metadata"]["labels"]["topology.kubernetes.io/zone"]
        for n in node_manifests(env=env)
        if n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "cpu"
    }
    assert len(zones(env)) == env.aws.network.az_count
    assert cpu_zones == set(zones(env)[: env.node_groups["cpu"].desired_size])


def test_allocatable_is_the_smallest_shape_minus_the_kubelet_reservation() -> None:
    env = load_environment("prod")
    node = next(n for n in node_manifests(env=env) if n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "cpu")
    shape = env.node_groups["cpu"].shape
    alloc = node["status"]["allocatable"]
    assert alloc["cpu"] == f"{shape.allocatable_cpu_millis}m"
    assert alloc["memory"] == f"{shape.allocatable_memory_mib}Mi"
    assert alloc["pods"] == str(shape.max_pods)
    assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] in env.node_groups["cpu"].instance_types
    # EKS's published figures: 80m reserved on 4 vCPUs, 2.5m per core beyond the 4th;
    # 255 MiB + 11 MiB per pod + 100 MiB eviction on memory.
    assert INSTANCE_SHAPES["m5.xlarge"].allocatable_cpu_millis == 3920
    assert INSTANCE_SHAPES["m5.2xlarge"].allocatable_cpu_millis == 8000 - 90
    assert INSTANCE_SHAPES["m5.xlarge"].allocatable_memory_mib == 16 * 1024 - (255 + 11 * 58 + 100)


def test_kind_config_has_workers_labelled_like_cpu_groups_only() -> None:
    env = load_environment("local")
    config = kind_config(env=env, image="kindest/node:v1.33.13")
    roles = Counter(n["role"] for n in config["nodes"])
    assert roles["control-plane"] == 1
    workers = [n for n in config["nodes"] if n["role"] == "worker"]
    assert workers and all(n["labels"]["workload"] == "cpu" for n in workers)
    assert all(n["image"] == "kindest/node:v1.33.13" for n in config["nodes"])
