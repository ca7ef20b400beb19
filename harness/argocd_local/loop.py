"""The whole GitOps loop on one cluster: a bare repository served by a local git server, Argo
CD running against the cluster, and the project's own render + publish feeding it.

    with gitops_loop(kubeconfig, env=env, workdir=tmp) as loop:
        published = loop.publish()            # render `env`, commit, push
        loop.bootstrap(published)             # AppProject + root app (what `pulumi up` applies)
        loop.wait_settled(published)          # every Application Synced/Healthy at that commit
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightkube import Client
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.resources.apps_v1 import Deployment, StatefulSet

from apps.waiting import wait_for
from argocd import objects
from argocd.publish import PublishResult, publish
from argocd.render import RenderedTree, render_environment
from environments.loader import deep_merge, with_overrides
from environments.model import Environment
from harness.argocd_local.applications import AppStatus, describe_applications, wait_applications
from harness.argocd_local.errors import ArgoLocalError
from harness.argocd_local.gitserver import GitDaemon, git_daemon
from harness.argocd_local.processes import ArgoCDLocal, argocd_local
from harness.argocd_local.simulation import explain
from harness.argocd_local.standins import service_monitor_crd
from harness.clusters.deploy import served_crd_groups, static_volumes, wait_deployment_available
from harness.clusters.fields import name_of
from harness.clusters.kube import apply_manifest, client_for
from harness.clusters.nodes import for_simulated_nodes

REPO = "gitops.git"


@dataclass(frozen=True)
class Published:
    env: Environment
    tree: RenderedTree
    result: PublishResult

    @property
    def revision(self) -> str:
        """The branch tip after this publish (the earlier tip when nothing changed)."""
        assert self.result.commit is not None, "nothing changed: no new revision"
        return self.result.commit

    def application_names(self) -> set[str]:
        return application_names(self.env, self.tree)


@dataclass
class GitOpsLoop:
    env: Environment  # the caller's, overrides and all
    client: Client
    git: GitDaemon
    argocd: ArgoCDLocal
    repo_path: Path
    current: Published | None = None  # the last publish
    # Not-Healthy verdicts the cluster explains (app -> reasons), from the last wait.
    explained: dict[str, list[str]] = field(default_factory=dict)

    @property
    def repo_url(self) -> str:
        """What Argo CD clones (the git server); publishing writes the bare repository directly."""
        return self.git.url(self.repo_path.name)

    def environment(self, overrides: dict[str, Any] | None = None) -> Environment:
        """The loop's environment publishing to its repository, with `overrides` on top."""
        env = with_overrides(self.env, deep_merge({"gitops": {"repo_url": str(self.repo_path)}}, overrides or {}))
        return for_simulated_nodes(env)  # Argo CD as host processes: a kwok cluster

    def publish(self, overrides: dict[str, Any] | None = None) -> Published:
        env = self.environment(overrides)
        tree = render_environment(env, repo_url=self.repo_url)
        prepare_cluster(self.client, tree)
        published = Published(env, tree, publish(env, tree))
        self.current = published
        return published

    def bootstrap(self, published: Published) -> None:
        """The AppProject and the root application: from then on Argo CD follows the branch."""
        for obj in sorted((o for o in published.tree.objects if o.path.startswith("bootstrap/")), key=lambda o: o.wave):
            apply_manifest(self.client, obj.manifest)

    def wait_settled(self, published: Published, *, revision: str | None = None, timeout: float = 300) -> dict[str, AppStatus]:
        """Every Application of the publish Synced at its revision (or `revision`): see `wait_apps`."""
        return self.wait_apps(published.application_names(), revision or published.revision, timeout=timeout)

    def wait_apps(self, names: set[str], revision: str, *, timeout: float = 300) -> dict[str, AppStatus]:
        """Every Application `names` Synced at `revision`, and Healthy or not Healthy only for
        reasons the simulated cluster states (see simulation.py; they are kept in `explained`)."""
        explained: dict[str, list[str]] = {}

        def healthy(app: AppStatus) -> bool:
            reasons = explain(self.client, app)
            if reasons:
                explained[app.name] = reasons
            return reasons is not None

        statuses = wait_applications(
            self.client, self.argocd.namespace, names=names,
            revision=revision, timeout=timeout, extra=self.argocd.logs, healthy=healthy,
        )
        self.explained = {name: reasons for name, reasons in explained.items() if statuses[name].health != "Healthy"}
        return statuses

    def diagnostics(self) -> str:
        return f"{describe_applications(self.client, self.argocd.namespace)}\n{self.argocd.logs()}"


def application_names(env: Environment, tree: RenderedTree) -> set[str]:
    """The Applications a tree makes: its apps' and the root application."""
    return {o.name for o in tree.objects if o.kind == "Application"} | {objects.root_name(env)}


def prepare_cluster(client: Client, tree: RenderedTree, *, volumes: bool = True) -> None:
    """What a simulated cluster lacks for the tree to become healthy: pre-bound volumes for its
    claims (`volumes`), and the ServiceMonitor CRD where no Prometheus operator installed the real one."""
    if volumes:
        static_volumes(client, tree)
    standin_crds(client)


def standin_crds(client: Client) -> None:
    """The ServiceMonitor CRD, only where no Prometheus operator installed the real one (never
    overwrite it); loaded into the client's known kinds."""
    if "monitoring.coreos.com" not in served_crd_groups(client):
        apply_manifest(client, service_monitor_crd())
        load_in_cluster_generic_resources(client)


@contextlib.contextmanager
def gitops_loop(kubeconfig: Path, *, env: Environment, workdir: Path, repo: Path | None = None,
                git_port: int | None = None, argocd_installed: bool = False) -> Iterator[GitOpsLoop]:
    """`env`: what the loop publishes (the caller's environment, used as given); `repo`: the bare
    repository to serve (default: `workdir/repos/gitops.git`), on `git_port` (default: any);
    `argocd_installed`: Argo CD's CRDs and configuration are applied already (by the local
    stack's `pulumi up`)."""
    client = client_for(kubeconfig)
    standin_crds(client)
    repo = repo or workdir / "repos" / REPO
    with git_daemon(repo.parent, log=workdir / "git-daemon.log", port=git_port) as git, argocd_local(
        kubeconfig, namespace=env.gitops.argocd_namespace, workdir=workdir / "argocd", installed=argocd_installed
    ) as argocd:
        yield GitOpsLoop(env, client, git, argocd, repo)


def wait_argocd_running(client: Client, namespace: str, *, timeout: float = 300) -> list[str]:
    """Argo CD installed as pods (kind): until each of its Deployments is available and its
    application controller's StatefulSet is ready; their names."""
    deployments = [name_of(d) for d in client.list(Deployment, namespace=namespace)]
    if not deployments:
        raise ArgoLocalError(f"no Argo CD Deployment in namespace {namespace}: was it installed (pulumi up)?")
    for name in deployments:
        wait_deployment_available(client, name, namespace, timeout=timeout)

    def controllers_ready() -> list[str] | None:
        sets = list(client.list(StatefulSet, namespace=namespace))
        ready = all((s.status.readyReplicas or 0) >= (s.spec.replicas or 1) for s in sets if s.status)
        return [name_of(s) for s in sets] if sets and ready else None

    return deployments + wait_for(controllers_ready, what=f"Argo CD's application controller in {namespace}",
                                  timeout=timeout, interval=1.0)
