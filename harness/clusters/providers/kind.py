"""kind: a cluster of Docker containers running real pods, pulling the project's images from the
local registry (harness/containers/registry.py) as EKS nodes pull from ECR.

The node image is kind's own (`kindest/node:<version>`) where Docker has it, else the one
assembled here offline from the toolchain (harness/clusters/nodeimage), once per set of inputs.
Pod networking is kind_network's static per-node CNI (kindnetd is not served to these machines).
On a 2-core machine a cluster is one control plane plus one worker per node group. A GPU group's
worker is a real kubelet with the group's labels and taint whose `nvidia.com/gpu` capacity is
advertised the way NVIDIA's device plugin would (there is no device): GPU pods schedule as on
EKS, and the apps' GPU paths fall back to CPU in them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from apps.waiting import WaitTimeoutError, wait_for
from environments.model import Environment
from harness.clusters.errors import ClusterCommandError
from harness.clusters.nodeimage.build import NODE_REPOSITORY
from harness.clusters.nodes import GPU_RESOURCE, NODE_GROUP_LABEL
from harness.clusters.providers import kind_network
from harness.clusters.providers.base import ClusterInfo, ProviderName, run, state_dir
from harness.containers.errors import ContainersError
from harness.containers.registry import LocalRegistry
from harness.toolchain import ToolchainError, ensure_tool, load_manifest

# kind runs real pods: a 2-core machine hosts one worker per node group next to the control plane.
MAX_WORKERS_PER_GROUP = 1
KIND_NETWORK = "kind"  # the Docker network kind puts every cluster's nodes on

# kind's fixed wait for a node's boot, and how many tries it gets (machine load, not a defect of the image).
SLOW_BOOT = "could not find a log line that matches"
NODE_BOOT_ATTEMPTS = 3


def upstream_node_image() -> str:
    """kind's published node image for the toolchain's Kubernetes version."""
    return f"kindest/node:{load_manifest().groups['kubernetes'].version}"


def _present(images: list[str]) -> list[str]:
    docker = shutil.which("docker") or "docker"
    return [image for image in images
            if subprocess.run([docker, "image", "inspect", image], capture_output=True, check=False).returncode == 0]


def upstream_node_image_present() -> bool:
    return bool(_present([upstream_node_image()]))


def node_image(log: Callable[[str], None] = lambda _: None) -> str:
    """kind's published node image where Docker has it, else the one built here (cached)."""
    from harness.clusters.nodeimage import ensure_node_image
    from harness.containers.engine import start_engine
    from harness.containers.settings import default_settings

    engine = start_engine()
    if _present([upstream_node_image()]):
        return upstream_node_image()
    return ensure_node_image(engine.client, settings=default_settings(), log=log)


def kind_config(*, env: Environment, image: str, registry: LocalRegistry | None = None) -> dict[str, Any]:
    """Pure: one control plane plus workers per node group, labelled and tainted like the group;
    every node pulls from the local registry (hosts mounted read-only, its credentials in the CRI)."""
    mounts = [{"hostPath": str(registry.node_hosts_dir()), "containerPath": "/etc/containerd/certs.d",
               "readOnly": True}] if registry else []
    nodes: list[dict[str, Any]] = [{"role": "control-plane", "image": image, "extraMounts": mounts}]
    for name, group in env.node_groups.items():
        for _ in range(min(group.desired_size, MAX_WORKERS_PER_GROUP)):
            node: dict[str, Any] = {"role": "worker", "image": image, "extraMounts": mounts,
                                    "labels": {**group.labels, NODE_GROUP_LABEL: name}}
            if group.taints:
                taints = [t.model_dump() for t in group.taints]
                node["kubeadmConfigPatches"] = [yaml.safe_dump(
                    {"kind": "JoinConfiguration", "nodeRegistration": {"taints": taints}}, sort_keys=False)]
            nodes.append(node)
    # kind's own CNI (kindnetd) cannot be had here: kind_network wires the nodes instead.
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "networking": {"disableDefaultCNI": True},
            "nodes": nodes, "kubeadmConfigPatches": [KUBELET_PATCH] if image.startswith(f"{NODE_REPOSITORY}:") else [],
            "containerdConfigPatches": [registry.containerd_patch()] if registry else []}


def advertised_gpus(env: Environment) -> dict[str, int]:
    """Pure: node group -> the `nvidia.com/gpu` count its kind workers advertise (GPU groups only)."""
    return {name: group.shape.gpus for name, group in env.node_groups.items()
            if group.kind == "gpu" and min(group.desired_size, MAX_WORKERS_PER_GROUP)}


# The node image's entrypoint writes resolv.pods.conf: the node's resolvers with Docker's DNS
# offered at the gateway (its loopback address would be the pod itself inside a pod).
KUBELET_PATCH = "kind: KubeletConfiguration\nresolvConf: /etc/resolv.pods.conf\n"


class KindProvider:
    name: ProviderName = "kind"

    def __init__(self, *, registry: LocalRegistry | None = None, image: str | None = None,
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.registry = registry
        self._image = image
        self.log = log

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = node_image(self.log)
        return self._image

    def _kind(self) -> Path:
        return ensure_tool("kind")

    def unavailable_reason(self) -> str | None:
        if shutil.which("docker") is None:
            return "the kind provider needs Docker: no `docker` on PATH"
        try:
            self._kind()
            self.image  # noqa: B018 - found, or built once and cached
        except ToolchainError as e:
            return f"the kind provider needs its tools: {e}"
        except (ContainersError, WaitTimeoutError) as e:
            return f"kind's node image can neither be found nor built here: {e}"
        return None

    def exists(self, cluster: str) -> bool:
        from harness.containers.engine import start_engine

        start_engine()  # kind lists its clusters through Docker
        return cluster in run([str(self._kind()), "get", "clusters"]).split()

    def kubeconfig(self, cluster: str) -> Path:
        path = state_dir() / f"kind-{cluster}.kubeconfig"
        path.write_text(run([str(self._kind()), "get", "kubeconfig", "--name", cluster]))
        path.chmod(0o600)
        return path

    def create(self, cluster: str, *, env: Environment) -> ClusterInfo:
        started = time.monotonic()
        created = False
        if not self.exists(cluster):
            config = state_dir() / f"kind-{cluster}.yaml"
            # It holds the registry's credentials: readable by its owner only.
            config.touch(mode=0o600)
            config.chmod(0o600)
            config.write_text(yaml.safe_dump(kind_config(env=env, image=self.image, registry=self.registry),
                                             sort_keys=False))
            try:
                self._create_nodes(cluster, config)
                self._network(cluster)
                self._advertise_gpus(cluster, env)
            except (ClusterCommandError, WaitTimeoutError):
                self.delete(cluster)
                raise
            created = True
        else:
            self._network(cluster)  # idempotent; a restarted node gets its routes back
            self._advertise_gpus(cluster, env)
        if self.registry:  # the nodes pull from it by name on kind's network
            from harness.containers.engine import start_engine
            from harness.containers.registry import connect

            connect(start_engine().client, KIND_NETWORK)
        return ClusterInfo(
            provider="kind", name=cluster, kubeconfig=self.kubeconfig(cluster), created=created, simulated=False,
            seconds=time.monotonic() - started,
        )

    def _create_nodes(self, cluster: str, config: Path) -> None:
        """`kind create cluster`, again when a node's systemd was slow to boot: kind gives it a fixed
        30 s to log "Reached target Multi-User System", which two loaded cores can miss."""
        for attempt in range(1, NODE_BOOT_ATTEMPTS + 1):
            try:
                run([str(self._kind()), "create", "cluster", "--name", cluster, "--config", str(config)], timeout=600)
                return
            except ClusterCommandError as e:
                if SLOW_BOOT not in e.output or attempt == NODE_BOOT_ATTEMPTS:
                    raise
                self.delete(cluster)  # kind deleted the nodes it made; the git server too
                print(f"kind: a node of {cluster} did not finish booting within kind's 30 s (a loaded machine); "
                      f"creating it again ({attempt + 1}/{NODE_BOOT_ATTEMPTS})", file=sys.stderr, flush=True)

    def _network(self, cluster: str) -> None:
        """Wire pod networking, then wait for every node to be Ready."""
        control_plane = f"{cluster}-control-plane"
        nodes = wait_for(lambda: kind_network.node_addresses(control_plane), what=f"podCIDRs of {cluster}'s nodes",
                         timeout=120, interval=1.0, transient=(RuntimeError, ClusterCommandError))
        kind_network.wire(nodes)
        self.kubectl(cluster, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=240s", timeout=300,
                     hint=f"the kubelet journal says why: docker exec {control_plane} journalctl -u kubelet")

    def kubectl(self, cluster: str, *args: str, timeout: float = 120, hint: str = "") -> str:
        """kubectl inside the control plane (admin kubeconfig): no kubeconfig or kubectl on the host needed
        (and what the API alone cannot do, such as `exec` into a pod)."""
        docker = shutil.which("docker") or "docker"
        return run([docker, "exec", f"{cluster}-control-plane", "kubectl",
                    f"--kubeconfig={kind_network.ADMIN_KUBECONFIG}", *args], timeout=timeout, hint=hint)

    def _advertise_gpus(self, cluster: str, env: Environment) -> None:
        """Each GPU group's workers get the group's GPUs as node capacity (idempotent)."""
        for group, gpus in advertised_gpus(env).items():
            names = self.kubectl(cluster, "get", "nodes", "-l", f"{NODE_GROUP_LABEL}={group}", "-o", "name").split()
            for node in names:
                patch = json.dumps({"status": {"capacity": {GPU_RESOURCE: str(gpus)}}})
                self.kubectl(cluster, "patch", node, "--subresource=status", "--type=merge", "-p", patch)

    def serve_git(self, cluster: str, base: Path) -> str:
        """The bare repositories under `base` served to the cluster's pods (Argo CD's repo-server)
        by a git server on kind's network; returns its host name."""
        from harness.argocd_local.gitserver import git_container
        from harness.containers.engine import start_engine
        from harness.containers.platform import platform_base
        from harness.containers.settings import default_settings

        client = start_engine().client
        image = platform_base(client, settings=default_settings(), log=self.log)
        return git_container(client, cluster=cluster, base=base, network=KIND_NETWORK, image=image)

    def delete(self, cluster: str) -> None:
        docker = shutil.which("docker") or "docker"
        from harness.argocd_local.gitserver import git_server_name

        subprocess.run([docker, "rm", "--force", git_server_name(cluster)], capture_output=True, check=False)
        if self.exists(cluster):
            run([str(self._kind()), "delete", "cluster", "--name", cluster], timeout=300)
        (state_dir() / f"kind-{cluster}.kubeconfig").unlink(missing_ok=True)
