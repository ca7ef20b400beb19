"""kind: a cluster of Docker containers from kind's node image, for machines with Docker and a
registry (laptops, hosted CI); the project's images are loaded into its nodes.

This workplace has no registry, so kind's node image cannot be pulled here: `unavailable_reason`
says so and the tests skip with it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from environments.model import Environment
from harness.clusters.errors import ClusterCommandError
from harness.clusters.providers.base import ClusterInfo, run, state_dir
from harness.containers.images import APP_IMAGES
from harness.toolchain import ToolchainError, ensure_tool, load_manifest

# kind runs real pods: a laptop cannot host prod's node count, so each group gets at most this many workers.
MAX_WORKERS_PER_GROUP = 2


def node_image() -> str:
    """kind's node image for the toolchain's Kubernetes version: same API server as the kwok clusters."""
    return f"kindest/node:{load_manifest().groups['kubernetes'].version}"


def kind_config(*, env: Environment, image: str) -> dict[str, Any]:
    """Pure: one control plane plus workers per CPU group, labelled like the group (GPU groups need real GPUs)."""
    nodes: list[dict[str, Any]] = [{"role": "control-plane", "image": image}]
    for name, group in env.node_groups.items():
        if group.kind != "cpu":
            continue
        for _ in range(min(group.desired_size, MAX_WORKERS_PER_GROUP)):
            nodes.append({"role": "worker", "image": image, "labels": {**group.labels, "eks.amazonaws.com/nodegroup": name}})
    return {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": nodes}


class KindProvider:
    name = "kind"

    def __init__(self, *, images: list[str] | None = None, image: str | None = None) -> None:
        self.images = images or []
        self.image = image or node_image()

    def _kind(self) -> Path:
        return ensure_tool("kind")

    def unavailable_reason(self) -> str | None:
        docker = shutil.which("docker")
        if docker is None:
            return "the kind provider needs Docker: no `docker` on PATH"
        probe = subprocess.run([docker, "image", "inspect", self.image], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            return f"kind's node image {self.image} is not in Docker and no registry is reachable to pull it"
        try:
            self._kind()
        except ToolchainError as e:
            return f"the kind provider needs the kind CLI: {e}"
        return None

    @staticmethod
    def _present(images: list[str]) -> list[str]:
        docker = shutil.which("docker") or "docker"
        return [
            image for image in images
            if subprocess.run([docker, "image", "inspect", image], capture_output=True, check=False).returncode == 0
        ]

    def exists(self, cluster: str) -> bool:
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
            config.write_text(yaml.safe_dump(kind_config(env=env, image=self.image), sort_keys=False))
            try:
                run([str(self._kind()), "create", "cluster", "--name", cluster, "--config", str(config), "--wait", "5m"], timeout=600)
            except ClusterCommandError:
                self.delete(cluster)
                raise
            created = True
        images = self.images or self._present([env.image(spec.name) for spec in APP_IMAGES])
        if images:
            # Pods use pull policy Never/IfNotPresent with these references: the nodes must hold them.
            run([str(self._kind()), "load", "docker-image", "--name", cluster, *images], timeout=600)
        return ClusterInfo(
            provider="kind", name=cluster, kubeconfig=self.kubeconfig(cluster), created=created, simulated=False,
            seconds=time.monotonic() - started,
        )

    def delete(self, cluster: str) -> None:
        if self.exists(cluster):
            run([str(self._kind()), "delete", "cluster", "--name", cluster], timeout=300)
        (state_dir() / f"kind-{cluster}.kubeconfig").unlink(missing_ok=True)
