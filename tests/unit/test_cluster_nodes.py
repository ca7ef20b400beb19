"""Simulated nodes are shaped like the environment's node groups: counts, zones, labels, taints, allocatable."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from environments import load_environment
from environments.instances import INSTANCE_SHAPES
from harness.clusters.nodes import GPU_RESOURCE, node_manifests, zones
from harness.clusters.providers.kind import advertised_gpus, kind_config



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


def test_kind_config_has_one_worker_per_group_labelled_and_tainted_like_it() -> None:
    env = load_environment("local")
    config = kind_config(env=env, image="kindest/node:v1.33.13")
    roles = Counter(n["role"] for n in config["nodes"])
    assert roles == {"control-plane": 1, "worker": 2}
    workers = {n["labels"]["eks.amazonaws.com/nodegroup"]: n for n in config["nodes"] if n["role"] == "worker"}
    assert workers["cpu"]["labels"]["workload"] == "cpu" and "kubeadmConfigPatches" not in workers["cpu"]
    gpu = workers["gpu"]
    assert gpu["labels"]["workload"] == "gpu"
    [patch] = [yaml.safe_load(p) for p in gpu["kubeadmConfigPatches"]]
    assert patch == {"kind": "JoinConfiguration", "nodeRegistration": {
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}}
    assert all(n["image"] == "kindest/node:v1.33.13" for n in config["nodes"])
    # The GPU worker advertises the group's instance GPUs (g5.12xlarge: 4), the CPU one none.
    assert advertised_gpus(env) == {"gpu": INSTANCE_SHAPES["g5.12xlarge"].gpus}


def test_kind_config_replaces_kindnetd_and_points_pods_at_a_resolver_that_is_not_themselves() -> None:
    env = load_environment("local")
    local = kind_config(env=env, image="mlops-kind-node:v1.33.13-0123456789ab")
    assert local["networking"] == {"disableDefaultCNI": True}
    assert any("resolvConf: /etc/resolv.pods.conf" in p for p in local["kubeadmConfigPatches"])
    # kind's published image has no resolv.pods.conf: no patch for it.
    assert kind_config(env=env, image="kindest/node:v1.33.13")["kubeadmConfigPatches"] == []


def test_each_kind_node_routes_the_other_nodes_pods_through_their_address() -> None:
    from harness.clusters.providers.kind_network import NodeAddress, cni_config, routes

    nodes = [NodeAddress("cp", "172.18.0.2", "10.244.0.0/24"), NodeAddress("w1", "172.18.0.3", "10.244.1.0/24"),
             NodeAddress("w2", "172.18.0.4", "10.244.2.0/24")]
    assert routes(nodes, on=nodes[1]) == [["ip", "route", "replace", "10.244.0.0/24", "via", "172.18.0.2"],
                                          ["ip", "route", "replace", "10.244.2.0/24", "via", "172.18.0.4"]]
    ptp = cni_config("10.244.1.0/24")["plugins"][0]
    assert ptp["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24"}]]
    assert ptp["ipMasq"] is False  # NetworkPolicies must see the source pod's own address


def test_pods_leave_the_pod_network_masqueraded_and_talk_to_each_other_unmasked() -> None:
    from harness.clusters.providers.kind_network import MASQ_CHAIN, NodeAddress, masquerade

    nodes = [NodeAddress("cp", "172.18.0.2", "10.244.0.0/24"), NodeAddress("w1", "172.18.0.3", "10.244.1.0/24")]
    script = masquerade(nodes, on=nodes[1])
    rules = [r.strip() for r in script.split(";")]
    returns = [r for r in rules if r.endswith("-j RETURN")]
    assert returns == [f"iptables -t nat -A {MASQ_CHAIN} -d {n.pod_cidr} -j RETURN" for n in nodes]
    # every pod CIDR is exempt before the catch-all, and only this node's pods go through the chain
    assert rules.index(returns[-1]) < rules.index(f"iptables -t nat -A {MASQ_CHAIN} -j MASQUERADE")
    assert f"-A POSTROUTING -s 10.244.1.0/24 -j {MASQ_CHAIN}" in script and "-s 10.244.0.0/24 -j" not in script


def test_a_cloud_tree_renders_for_a_local_cluster_standing_in_for_eks() -> None:
    """The chart add-ons name the stack's ids; a simulated cluster gets stand-ins, the local env none."""
    from argocd.render import render_environment
    from harness.clusters.nodes import simulated_cloud

    assert simulated_cloud(load_environment("local")) is None
    for name in ("dev", "prod"):
        env = load_environment(name)
        tree = render_environment(env, cloud=simulated_cloud(env))
        assert "apps/aws-efs-csi-driver/storageclass-efs-sc.yaml" in tree
    irsa = load_environment("prod", {"aws": {"cluster": {"identity": "irsa"}}})
    tree = render_environment(irsa, cloud=simulated_cloud(irsa))
    accounts = [o for o in tree.objects if o.kind == "ServiceAccount" and o.app == "inference-api"]
    assert accounts[0].manifest["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("simulated-inference-api")
