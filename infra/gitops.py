"""GitOps bootstrap: Argo CD from its pinned Helm chart, the environment's AppProject and
root application (taken from the rendered tree, never rewritten here), and the publish
step that commits the tree Argo CD will sync.

Works against any Kubernetes provider: the EKS cluster's for cloud environments, a local
kubeconfig's for `local` (a later step: `GitOpsBootstrapArgs.for_env(env, registry=
env.images.registry, role_arns={}, ...)` with a provider built from that kubeconfig).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from argocd.objects import API_VERSION as ARGOCD_API_VERSION
from argocd.render import service_accounts
from environments import Environment
from infra.publish import GitOpsPublish, file_digests, render

TOKEN = "mlops:infra:GitOpsBootstrap"
ARGOCD_REPO = "https://argoproj.github.io/argo-helm"
APPPROJECT_FILE = "bootstrap/appproject.yaml"
ROOT_APP_FILE = "bootstrap/root-application.yaml"
# Deleting the root app then cascades to the apps it made (LoadBalancers and their ENIs
# included) before Argo CD itself goes: the destroy order that leaves nothing behind.
CASCADE_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def argocd_values() -> dict[str, Any]:
    return {
        # CRDs outlive a chart upgrade or uninstall, so Applications are never deleted by accident.
        "crds": {"install": True, "keep": True},
        # Users sign in through the cluster's own credentials; no bundled identity server to patch.
        "dex": {"enabled": False},
    }


def with_cascade(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    finalizers = out["metadata"].setdefault("finalizers", [])
    if CASCADE_FINALIZER not in finalizers:
        finalizers.append(CASCADE_FINALIZER)
    return out


PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/placeholder"


def bootstrap_objects(env: Environment) -> dict[str, dict[str, Any]]:
    """The AppProject and root application. They name no image and no role, so they are rendered
    before the registry and roles exist: a first `pulumi preview` already shows them in full."""
    placeholders = {app: PLACEHOLDER_ROLE for app, _, _ in service_accounts(env)}
    tree = render(env, registry=env.images.registry, role_arns=placeholders)
    by_path = {o.path: o.manifest for o in tree.objects}
    return {p: by_path[p] for p in (APPPROJECT_FILE, ROOT_APP_FILE)}


def tree_digests(env: Environment, registry: str, role_arns: dict[str, str]) -> dict[str, str]:
    """Every file of the tree as it will be published, by digest: what the publish step's diff shows."""
    return file_digests(render(env, registry=registry, role_arns=role_arns))


@dataclass(frozen=True)
class GitOpsBootstrapArgs:
    env_name: str
    namespace: str
    chart_version: str
    repo_url: str
    branch: str
    path: str
    registry: pulumi.Input[str]
    role_arns: pulumi.Input[dict[str, str]]
    # relative path -> digest, and the two bootstrap manifests, from one render of the tree
    files: pulumi.Input[dict[str, str]]
    bootstrap: pulumi.Input[dict[str, dict[str, Any]]]
    kubernetes_provider: k8s.Provider

    @classmethod
    def for_env(cls, env: Environment, *, chart_version: str, registry: pulumi.Input[str],
                role_arns: pulumi.Input[dict[str, str]], kubernetes_provider: k8s.Provider) -> GitOpsBootstrapArgs:
        """Everything from the environment; only where images live and which roles apps use come from outside."""
        files = pulumi.Output.all(registry, role_arns).apply(lambda a: tree_digests(env, a[0], dict(a[1])))
        return cls(env_name=env.name, namespace=env.gitops.argocd_namespace, chart_version=chart_version,
                   repo_url=env.gitops.repo_url, branch=env.gitops.branch, path=env.gitops.path,
                   registry=registry, role_arns=role_arns, files=files, bootstrap=bootstrap_objects(env),
                   kubernetes_provider=kubernetes_provider)


class GitOpsBootstrap(pulumi.ComponentResource):
    commit: pulumi.Output[str]
    repo_url: str

    def __init__(self, name: str, args: GitOpsBootstrapArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.namespace, "labels": {
                "app.kubernetes.io/part-of": "ml-platform",
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            }},
            opts=k8s_opts,
        )
        release = k8s.helm.v3.Release(
            f"{name}-argocd",
            name="argocd",
            chart="argo-cd",
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ARGOCD_REPO),
            namespace=namespace.metadata["name"],
            values=argocd_values(),
            atomic=True,
            opts=k8s_opts,
        )
        published = GitOpsPublish(
            f"{name}-publish", env_name=args.env_name, repo_url=args.repo_url, branch=args.branch, path=args.path,
            registry=args.registry, role_arns=args.role_arns, files=args.files,
            opts=pulumi.ResourceOptions(parent=self),
        )
        bootstrap = pulumi.Output.from_input(args.bootstrap)
        project = self._custom(f"{name}-appproject", "AppProject", bootstrap.apply(lambda b: b[APPPROJECT_FILE]),
                               pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider,
                                                      depends_on=[release]))
        self._custom(f"{name}-root-app", "Application", bootstrap.apply(lambda b: with_cascade(b[ROOT_APP_FILE])),
                     pulumi.ResourceOptions(parent=self, provider=args.kubernetes_provider,
                                            depends_on=[release, project, published]))

        self.repo_url = args.repo_url
        self.commit = published.commit
        self.register_outputs({"repo_url": args.repo_url, "commit": self.commit})

    @staticmethod
    def _custom(name: str, kind: str, manifest: pulumi.Output[dict[str, Any]],
                opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            name,
            api_version=ARGOCD_API_VERSION,
            kind=kind,
            metadata=manifest.apply(lambda m: m["metadata"]),
            spec=manifest.apply(lambda m: m["spec"]),
            opts=opts,
        )
