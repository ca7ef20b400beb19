"""Argo CD objects: the AppProject, the root app-of-apps and one Application per app."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from apps.k8s import SYNC_WAVE, AppMeta, Obj
from environments.model import Environment

API_VERSION = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"
# Transient failures (a webhook not ready, a CRD just created) get retried, not reported.
RETRY = {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}}
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def project_name(env: Environment) -> str:
    return f"ml-platform-{env.name}"


def addons_project_name(env: Environment) -> str:
    return f"ml-platform-{env.name}-addons"


def root_name(env: Environment) -> str:
    return f"ml-platform-{env.name}-root"


def application_name(env: Environment, app: str) -> str:
    return f"{env.name}-{app}"


def _labels(env: Environment, component: str) -> dict[str, str]:
    """The recommended labels, from the one place every object of ours gets them."""
    return AppMeta(env=env, name="argocd-apps", component=component).labels()


def app_project(
    *, env: Environment, repo_url: str, namespaces: Iterable[str], namespaced_kinds: Iterable[tuple[str, str]],
    cluster_kinds: Iterable[tuple[str, str]] = (),
) -> Obj:
    """Only our repo, only our namespaces, only the kinds we render (cluster-scoped: Namespace and
    what the add-ons render, such as ClusterRoles and APIServices)."""
    destinations = [
        {"server": IN_CLUSTER, "namespace": ns} for ns in sorted({*namespaces, env.gitops.argocd_namespace})
    ]
    kinds = sorted({*namespaced_kinds, ("argoproj.io", "Application")})
    return {
        "apiVersion": API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": project_name(env),
            "namespace": env.gitops.argocd_namespace,
            "labels": _labels(env, "project"),
            "annotations": {SYNC_WAVE: "-1"},
        },
        "spec": {
            "description": f"ML platform workloads of the {env.name} environment",
            "sourceRepos": [repo_url],
            "destinations": destinations,
            "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in sorted({("", "Namespace"), *cluster_kinds})],
            "namespaceResourceWhitelist": [{"group": g, "kind": k} for g, k in kinds],
            "orphanedResources": {"warn": True},
        },
    }


def addons_project(*, env: Environment, repo_url: str, chart_repos: Iterable[str], namespaces: Iterable[str]) -> Obj:
    """The upstream charts' project: only their pinned repositories (and ours, for the objects
    we sync beside them) into their namespaces. Charts bring CRDs, webhooks and DaemonSets of
    their own, so kinds are not listed one by one as in the apps' project."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AppProject",
        "metadata": {
            "name": addons_project_name(env),
            "namespace": env.gitops.argocd_namespace,
            "labels": _labels(env, "addons-project"),
            "annotations": {SYNC_WAVE: "-1"},
        },
        "spec": {
            "description": f"Platform add-ons (upstream Helm charts) of the {env.name} environment",
            "sourceRepos": sorted({repo_url, *chart_repos}),
            "destinations": [{"server": IN_CLUSTER, "namespace": ns} for ns in sorted(set(namespaces))],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
            "orphanedResources": {"warn": True},
        },
    }


def chart_application(
    *,
    env: Environment,
    app: str,
    chart_repo: str,
    chart: str,
    version: str,
    values: Obj,
    namespace: str,
    wave: int,
    repo_url: str,
    path: str | None,
) -> Obj:
    """An upstream chart at a pinned version with our values; `path` adds the objects of ours
    that belong with it (a StorageClass, a secret store) from the tree, as a second source."""
    sources: list[Obj] = [{
        "repoURL": chart_repo,
        "chart": chart,
        "targetRevision": version,
        "helm": {"releaseName": app, "valuesObject": values},
    }]
    if path is not None:
        sources.append({"repoURL": repo_url, "targetRevision": env.gitops.branch, "path": path})
    options = _sync_policy(create_namespace=True)
    # Charts ship large CRDs: server-side apply has no last-applied annotation to overflow.
    options["syncOptions"].append("ServerSideApply=true")
    return _application(env, app, wave, {
        "project": addons_project_name(env),
        "sources": sources,
        "destination": {"server": IN_CLUSTER, "namespace": namespace},
        "syncPolicy": options,
    })


def _sync_policy(*, create_namespace: bool) -> Obj:
    options = ["PruneLast=true", "ApplyOutOfSyncOnly=true"]
    if create_namespace:
        options.insert(0, "CreateNamespace=true")
    return {"automated": {"prune": True, "selfHeal": True}, "syncOptions": options, "retry": RETRY}


def application(
    *,
    env: Environment,
    app: str,
    repo_url: str,
    path: str,
    namespace: str,
    wave: int,
    create_namespace: bool,
    ignore_replicas_of: Sequence[str] = (),
) -> Obj:
    spec: Obj = {
        "project": project_name(env),
        "source": {
            "repoURL": repo_url,
            "targetRevision": env.gitops.branch,
            # No `directory: {recurse: false}`: false is the default, and Argo CD stores
            # Applications without it, so an app of apps that renders it is OutOfSync forever.
            "path": path,
        },
        "destination": {"server": IN_CLUSTER, "namespace": namespace},
        "syncPolicy": _sync_policy(create_namespace=create_namespace),
    }
    if ignore_replicas_of:
        # The HPA owns replicas: a scaled Deployment is not drift.
        spec["ignoreDifferences"] = [
            {
                "group": "apps",
                "kind": "Deployment",
                "name": name,
                "namespace": namespace,
                "jsonPointers": ["/spec/replicas"],
            }
            for name in ignore_replicas_of
        ]
        spec["syncPolicy"]["syncOptions"].append("RespectIgnoreDifferences=true")
    return _application(env, app, wave, spec)


def _application(env: Environment, app: str, wave: int, spec: Obj) -> Obj:
    """An app's Application: its wave among the root app's, and the finalizer that cascades."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": application_name(env, app),
            "namespace": env.gitops.argocd_namespace,
            "labels": _labels(env, app),
            "annotations": {SYNC_WAVE: str(wave)},
            "finalizers": [FINALIZER],
        },
        "spec": spec,
    }


def root_application(*, env: Environment, repo_url: str, path: str) -> Obj:
    """The app of apps: syncs the Application objects, which sync the apps."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": root_name(env),
            "namespace": env.gitops.argocd_namespace,
            "labels": _labels(env, "root"),
            "annotations": {SYNC_WAVE: "0"},
        },
        "spec": {
            "project": project_name(env),
            "source": {
                "repoURL": repo_url,
                "targetRevision": env.gitops.branch,
                "path": path,
            },
            "destination": {"server": IN_CLUSTER, "namespace": env.gitops.argocd_namespace},
            "syncPolicy": _sync_policy(create_namespace=False),
        },
    }
