"""Argo CD on a cluster whose nodes run no pods: its CRDs and configuration applied from the
pinned module's manifests, its repo-server and application-controller run here as processes
(the pinned multi-call binary), Redis from the machine, all on 127.0.0.1.

    with argocd_local(kubeconfig, namespace="argocd", workdir=tmp) as argocd:
        client.apply(...)   # an AppProject and a root Application: Argo CD syncs them

The controller reaches the in-cluster destination (https://kubernetes.default.svc) through
the kubeconfig (ARGOCD_FAKE_IN_CLUSTER), as Argo CD's own local development setup does.
Everything stops on the way out; the cluster objects stay (they belong to the cluster, which
its own fixture deletes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from apps.waiting import wait_for
from harness.argocd_local import upstream
from harness.argocd_local.process import Running, running
from harness.argocd_local.redis import redis_server
from harness.clusters.kube import apply_manifest, client_for
from harness.ports import LOOPBACK, accepting, free_port
from harness.toolchain import ensure_tool
from harness.toolchain.build import cached_path
from harness.toolchain.manifest import load_manifest

# How often the controller re-reads git without a webhook (Argo CD's default is 120s); the
# loop under test is the same, only the polling is quicker.
DEFAULT_RESYNC_S = 10
# How long the repo-server trusts its last `git ls-remote` of a branch (Argo CD: 3m). Without
# a push webhook this bounds how soon a publish is seen; locally seconds keep the loop quick.
REVISION_CACHE = "5s"


@dataclass(frozen=True)
class ArgoCDLocal:
    namespace: str
    kubeconfig: Path
    repo_server: Running
    controller: Running

    def logs(self, lines: int = 60) -> str:
        return "\n".join(
            f"--- {p.name} ({p.log}):\n{p.tail(lines)}" for p in (self.repo_server, self.controller)
        )


def cached_tool(name: str) -> Path | None:
    """The toolchain's build of `name` when it exists; never builds."""
    _, group = load_manifest().group_of(name)
    path = cached_path(name, group.version)
    return path if path.is_file() else None


def _established(client: Client, name: str) -> bool:
    crd = client.get(CustomResourceDefinition, name)
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def wait_established(client: Client, name: str, *, hint: str = "") -> None:
    wait_for(lambda: _established(client, name), what=f"CRD {name} established", timeout=60, interval=0.3,
             transient=(ApiError,), hint=hint)


def install(client: Client, *, namespace: str, settings: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Namespace, CRDs (waited until established) and base configuration; the applied objects.
    Server-side apply: running it again converges."""
    applied = [apply_manifest(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})]
    for crd in upstream.crds():
        applied.append(apply_manifest(client, crd))
        wait_established(client, crd["metadata"]["name"])
    load_in_cluster_generic_resources(client)
    for obj in upstream.base_config(namespace=namespace, overrides={"argocd-cm": settings or {}}):
        applied.append(apply_manifest(client, obj))
    return applied


@contextlib.contextmanager
def argocd_local(
    kubeconfig: Path,
    *,
    namespace: str,
    workdir: Path,
    resync_s: int = DEFAULT_RESYNC_S,
    settings: dict[str, str] | None = None,
    installed: bool = False,
) -> Iterator[ArgoCDLocal]:
    """`installed`: the CRDs and configuration are there already (`pulumi up` of the local
    stack applied them); only wait until the CRDs are established."""
    binary = ensure_tool(upstream.TOOL)
    kubeconfig = kubeconfig.resolve()
    client = client_for(kubeconfig)
    if installed:
        for crd in upstream.crds():
            wait_established(client, crd["metadata"]["name"],
                             hint="the local stack applies Argo CD's CRDs: run `pulumi up` first")
    else:
        install(client, namespace=namespace, settings=settings)
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("tls", "ssh", "gpg/keys", "gpg/source", "tmp"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    bin_dir = upstream.install_helpers(workdir / "bin")
    # Helm and kustomize, when the toolchain has built them: what Argo CD's image ships for
    # Helm and kustomize sources (the project's apps are plain directories and need neither).
    for tool in ("helm", "kustomize"):
        built = cached_tool(tool)
        if built is not None:
            link = bin_dir / tool
            link.unlink(missing_ok=True)
            link.symlink_to(built)
    with redis_server(workdir / "redis") as redis:
        common = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(kubeconfig),
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "REDIS_PASSWORD": redis.password,
            "ARGOCD_TLS_DATA_PATH": str(workdir / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(workdir / "ssh"),
            "ARGOCD_GNUPGHOME": str(workdir / "gpg/keys"),
            "ARGOCD_GPG_DATA_PATH": str(workdir / "gpg/source"),
            "ARGOCD_GPG_ENABLED": "false",
            # Clones and manifests of the repo-server land here, not in the shared /tmp.
            "TMPDIR": str(workdir / "tmp"),
            "GIT_TERMINAL_PROMPT": "0",
        }
        repo_port, repo_metrics, controller_metrics = free_port(), free_port(), free_port()
        repo_command = [
            str(binary), "--loglevel", "info", "--logformat", "json",
            "--address", LOOPBACK, "--port", str(repo_port),
            "--metrics-address", LOOPBACK, "--metrics-port", str(repo_metrics),
            "--redis", redis.address,
            "--revision-cache-expiration", REVISION_CACHE,
            # Plain gRPC on loopback between two processes of ours (in a cluster it is TLS).
            "--disable-tls", "--client-ca-path", "",
        ]
        with running(
            "argocd-repo-server", repo_command, log=workdir / "repo-server.log",
            env={**common, "ARGOCD_BINARY_NAME": "argocd-repo-server"}, cwd=workdir,
            ready=lambda: accepting(repo_port) and accepting(repo_metrics), timeout=120,
        ) as repo_server:
            controller_command = [
                str(binary), "--loglevel", "info", "--logformat", "json",
                "--namespace", namespace,
                "--redis", redis.address,
                "--repo-server", f"{LOOPBACK}:{repo_port}", "--repo-server-plaintext",
                "--metrics-port", str(controller_metrics),
                "--app-resync", str(resync_s), "--app-resync-jitter", "0",
                "--status-processors", "4", "--operation-processors", "2",
                # Resource health in the Application status: what failure reports show.
                "--persist-resource-health",
            ]
            with running(
                "argocd-application-controller", controller_command, log=workdir / "application-controller.log",
                env={**common, "ARGOCD_BINARY_NAME": "argocd-application-controller"}, cwd=workdir,
                ready=lambda: accepting(controller_metrics), timeout=120,
            ) as controller:
                yield ArgoCDLocal(namespace, kubeconfig, repo_server, controller)
