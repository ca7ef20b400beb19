"""kwok: a real control plane (etcd, kube-apiserver, controller-manager, scheduler) from the
toolchain's binaries, run by `kwokctl --runtime binary`, with nodes simulated by kwok.

    provider = KwokProvider()
    info = provider.create("mlops-local", env=load_environment("local"))
    ...
    provider.delete("mlops-local")
"""

from __future__ import annotations

import time
from pathlib import Path

from lightkube import ApiError

from environments.model import Environment
from harness.clusters.errors import ClusterError
from harness.clusters.kube import apply_manifest, client_for, wait_nodes_ready
from harness.clusters.nodes import node_manifests
from harness.clusters.providers.base import ClusterInfo, ProviderName, run, state_dir
from harness.toolchain import ToolchainError, ensure_tools

TOOLS = ["kwokctl", "kwok", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]


class KwokProvider:
    name: ProviderName = "kwok"

    def __init__(self, *, create_timeout_s: float = 300) -> None:
        self.create_timeout_s = create_timeout_s
        self._tools: dict[str, Path] | None = None

    def tools(self) -> dict[str, Path]:
        if self._tools is None:
            self._tools = ensure_tools(TOOLS)
        return self._tools

    def unavailable_reason(self) -> str | None:
        try:
            self.tools()
        except ToolchainError as e:
            return f"the kwok provider needs the toolchain: {e}"
        return None

    def _kwokctl(self, *args: str, timeout: float = 120, hint: str = "") -> str:
        tools = self.tools()
        # kwokctl would download kubectl for some commands: point it at ours (no downloads here).
        env = {"KWOK_KUBECTL_BINARY": str(tools["kubectl"])}
        return run([str(tools["kwokctl"]), *args], env=env, timeout=timeout, hint=hint)

    def clusters(self) -> list[str]:
        return [line.strip() for line in self._kwokctl("get", "clusters").splitlines() if line.strip()]

    def exists(self, cluster: str) -> bool:
        return cluster in self.clusters()

    def kubeconfig(self, cluster: str) -> Path:
        path = state_dir() / f"kwok-{cluster}.kubeconfig"
        path.write_text(self._kwokctl("--name", cluster, "get", "kubeconfig"))
        path.chmod(0o600)
        return path

    def _reachable(self, kubeconfig: Path) -> bool:
        try:
            client_for(kubeconfig).get_version()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - any failure means "not serving"
            return False
        return True

    def create(self, cluster: str, *, env: Environment) -> ClusterInfo:
        started = time.monotonic()
        tools = self.tools()
        created = False
        if self.exists(cluster):
            kubeconfig = self.kubeconfig(cluster)
            if not self._reachable(kubeconfig):
                # Kept from an earlier run whose processes are gone (a reboot): start them again.
                self._kwokctl("--name", cluster, "start", "cluster", timeout=self.create_timeout_s)
        else:
            self._kwokctl(
                "--name", cluster, "create", "cluster",
                "--runtime", "binary",
                "--etcd-binary", str(tools["etcd"]),
                "--kube-apiserver-binary", str(tools["kube-apiserver"]),
                "--kube-controller-manager-binary", str(tools["kube-controller-manager"]),
                "--kube-scheduler-binary", str(tools["kube-scheduler"]),
                "--kwok-controller-binary", str(tools["kwok"]),
                # Real admission (Pod Security among it) and RBAC: what the tests prove relies on them.
                "--kube-admission=true", "--kube-authorization=true",
                "--wait", f"{int(self.create_timeout_s)}s",
                "--timeout", f"{int(self.create_timeout_s)}s",
                timeout=self.create_timeout_s + 60,
                hint=f"see `kwokctl --name {cluster} logs kube-apiserver`; delete with `kwokctl --name {cluster} delete cluster`",
            )
            created = True
            kubeconfig = self.kubeconfig(cluster)
        try:
            self.shape(kubeconfig, env=env)
        except Exception:
            if created:
                self.delete(cluster)  # half-made: never leave processes behind
            raise
        return ClusterInfo(
            provider="kwok", name=cluster, kubeconfig=kubeconfig, created=created, simulated=True,
            seconds=time.monotonic() - started,
        )

    def shape(self, kubeconfig: Path, *, env: Environment) -> None:
        """Nodes like env's node groups (server-side apply: re-running converges, never duplicates)."""
        client = client_for(kubeconfig)
        nodes = node_manifests(env=env)
        try:
            for node in nodes:
                status = node.pop("status")
                apply_manifest(client, node)
                # Node status is a subresource: capacity and allocatable go there, as a kubelet would report.
                patch = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node["metadata"]["name"]}, "status": status}
                apply_manifest(client, patch, subresource="status")
        except ApiError as e:
            raise ClusterError(f"shaping nodes like env {env.name!r}: the API server refused a Node: {e.status.message}") from e
        wait_nodes_ready(client, names=[n["metadata"]["name"] for n in nodes])

    def delete(self, cluster: str) -> None:
        if not self.exists(cluster):
            return
        self._kwokctl("--name", cluster, "delete", "cluster", timeout=120)
        if self.exists(cluster):
            raise ClusterError(f"kwok cluster {cluster!r} still listed after delete; run `kwokctl --name {cluster} delete cluster`")
        (state_dir() / f"kwok-{cluster}.kubeconfig").unlink(missing_ok=True)
