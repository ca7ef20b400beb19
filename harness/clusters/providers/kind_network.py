"""Pod networking for kind nodes without kindnetd (the Go module proxy does not serve it).

Each node gets a static CNI config for its own podCIDR (ptp veths, host-local addresses, portmap
for hostPorts), and a route to every other node's podCIDR through that node's address on kind's
Docker network: pods reach each other by their own IPs, so NetworkPolicies see real sources.
Applied after `kind create cluster` (nodes stay NotReady until their config exists), and again on
reuse: every step is idempotent, and a restarted node gets its routes back.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

from harness.clusters.providers.base import run

CNI_CONFIG = "/etc/cni/net.d/10-mlops-ptp.conflist"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"


@dataclass(frozen=True)
class NodeAddress:
    name: str
    ip: str
    pod_cidr: str


def cni_config(pod_cidr: str, *, mtu: int = 1500) -> dict[str, Any]:
    """Pure: the node's CNI conflist for `pod_cidr`."""
    return {
        "cniVersion": "1.0.0",
        "name": "mlops-ptp",
        "plugins": [
            {
                "type": "ptp",
                "mtu": mtu,
                # No masquerade: pod-to-pod traffic between nodes keeps its source address.
                "ipMasq": False,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]],
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/run/cni-ipam-state"},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def routes(nodes: list[NodeAddress], on: NodeAddress) -> list[list[str]]:
    """Pure: the `ip route` commands node `on` needs to reach the other nodes' pods."""
    return [["ip", "route", "replace", n.pod_cidr, "via", n.ip] for n in nodes if n.name != on.name]


def node_addresses(control_plane: str) -> list[NodeAddress]:
    """Every node's InternalIP and podCIDR, read through the control plane's admin kubeconfig."""
    docker = shutil.which("docker") or "docker"
    listing = json.loads(run([docker, "exec", control_plane, "kubectl", f"--kubeconfig={ADMIN_KUBECONFIG}",
                              "get", "nodes", "-o", "json"], timeout=60))
    out = []
    for item in listing["items"]:
        ip = next(a["address"] for a in item["status"]["addresses"] if a["type"] == "InternalIP")
        cidr = item["spec"].get("podCIDR")
        if not cidr:
            raise RuntimeError(f"node {item['metadata']['name']} has no podCIDR yet (controller-manager allocates it)")
        out.append(NodeAddress(item["metadata"]["name"], ip, cidr))
    return out


MASQ_CHAIN = "MLOPS-POD-EGRESS"


def masquerade(nodes: list[NodeAddress], on: NodeAddress) -> str:
    """Pure: a shell script giving node `on`'s pods a way out of the pod network (to containers on
    kind's Docker network, such as the GitOps repository's git server): their traffic to any
    address outside every pod CIDR leaves with the node's address, the way kindnetd does it;
    pod-to-pod traffic keeps its source. Rebuilt from scratch each time (idempotent)."""
    keep = "".join(f"iptables -t nat -A {MASQ_CHAIN} -d {n.pod_cidr} -j RETURN; " for n in nodes)
    return (f"iptables -t nat -N {MASQ_CHAIN} 2>/dev/null; iptables -t nat -F {MASQ_CHAIN}; {keep}"
            f"iptables -t nat -A {MASQ_CHAIN} -j MASQUERADE; "
            f"iptables -t nat -C POSTROUTING -s {on.pod_cidr} -j {MASQ_CHAIN} 2>/dev/null || "
            f"iptables -t nat -A POSTROUTING -s {on.pod_cidr} -j {MASQ_CHAIN}")


def wire(nodes: list[NodeAddress]) -> None:
    """Write each node's CNI config, its routes to the other nodes' pods, and its pods' way out
    (idempotent)."""
    docker = shutil.which("docker") or "docker"
    for node in nodes:
        config = json.dumps(cni_config(node.pod_cidr), indent=1)
        run([docker, "exec", node.name, "sh", "-c", f"cat > {CNI_CONFIG}.partial <<'EOF'\n{config}\nEOF\n"
             f"mv {CNI_CONFIG}.partial {CNI_CONFIG}"], timeout=60)
        for command in routes(nodes, on=node):
            run([docker, "exec", node.name, *command], timeout=60)
        run([docker, "exec", node.name, "sh", "-c", masquerade(nodes, on=node)], timeout=60)
