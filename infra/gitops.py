"""GitOps bootstrap: Argo CD, the environment's AppProject and root application (taken from
the rendered tree, never rewritten here), and the publish step that commits the tree Argo CD
will sync.

Argo CD is installed one of two ways:
- `HelmInstall` (cloud): its pinned Helm chart through the cluster's pulumi-kubernetes provider;
- `ManifestInstall` (`local`): its manifests at the pinned version, applied through a kubeconfig
  (infra/kubernetes_object.py): on kind its whole install, images built locally, so it runs as
  pods; on kwok only its CRDs and configuration, because simulated nodes run no pods (its
  controllers then run as the harness's processes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from apps.addons.charts import calling_aws
from apps.cloud import CloudMetadata
from argocd.objects import API_VERSION as ARGOCD_API_VERSION
from argocd.render import ADDONS_APPPROJECT_FILE, APPPROJECT_FILE, ROOT_APP_FILE, service_accounts
from environments import Environment
from environments.loader import overrides_of
from infra.kubernetes_object import KubernetesObject
from infra.publish import GitOpsPublish, file_digests, render

TOKEN = "mlops:infra:GitOpsBootstrap"
ARGOCD_REPO = "https://argoproj.github.io/argo-helm"
# Deleting the root app then cascades to the apps it made (LoadBalancers and their ENIs
# included) before Argo CD itself goes: the destroy order that leaves nothing behind.
CASCADE_FINALIZER = "resources-finalizer.argocd.argoproj.io"


def argocd_settings(poll_interval_s: int) -> dict[str, str]:
    """argocd-cm keys set by the environment, for the chart and the manifest install alike. The
    jitter Argo CD adds to each poll (60 s by default) scales with the interval: a third of it."""
    return {"timeout.reconciliation": f"{poll_interval_s}s",
            "timeout.reconciliation.jitter": f"{min(poll_interval_s // 3, 60)}s"}


def argocd_values(poll_interval_s: int, argocd_version: str) -> dict[str, Any]:
    return {
        # The environment's Argo CD, whatever the chart's default: the version the tree is validated
        # against and local clusters run.
        "global": {"image": {"tag": argocd_version}},
        # CRDs outlive a chart upgrade or uninstall, so Applications are never deleted by accident.
        "crds": {"install": True, "keep": True},
        # Users sign in through the cluster's own credentials; no bundled identity server to patch.
        "dex": {"enabled": False},
        "configs": {"cm": argocd_settings(poll_interval_s)},
    }


def with_cascade(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    finalizers = out["metadata"].setdefault("finalizers", [])
    if CASCADE_FINALIZER not in finalizers:
        finalizers.append(CASCADE_FINALIZER)
    return out


PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/placeholder"
PROJECT_FILES = (APPPROJECT_FILE, ADDONS_APPPROJECT_FILE)


def bootstrap_objects(env: Environment, clone_url: str | None = None) -> dict[str, dict[str, Any]]:
    """The AppProjects and root application. They name no image, role or id, so they are rendered
    before the stack's resources exist: a first `pulumi preview` already shows them in full."""
    holders = [name for name, _, _ in (*service_accounts(env), *calling_aws(env))]
    placeholders = CloudMetadata(registry=env.images.registry, role_arns=dict.fromkeys(holders, PLACEHOLDER_ROLE),
                                 vpc_id="vpc-placeholder", file_system_id="fs-placeholder")
    tree = render(env, cloud=placeholders, clone_url=clone_url)
    by_path = {o.path: o.manifest for o in tree.objects}
    return {p: by_path[p] for p in (*PROJECT_FILES, ROOT_APP_FILE) if p in by_path}


def tree_digests(env: Environment, cloud: CloudMetadata, clone_url: str | None = None) -> dict[str, str]:
    """Every file of the tree as it will be published, by digest: what the publish step's diff shows."""
    return file_digests(render(env, cloud=cloud, clone_url=clone_url))


Manifest = pulumi.Output[dict[str, Any]]


@dataclass(frozen=True)
class HelmInstall:
    """Argo CD from its pinned Helm chart, through the cluster's pulumi-kubernetes provider."""

    chart_version: str
    provider: k8s.Provider
    poll_interval_s: int
    argocd_version: str

    @classmethod
    def of(cls, env: Environment, provider: k8s.Provider) -> HelmInstall:
        assert env.aws is not None  # the chart install is the cloud's
        return cls(env.aws.argocd_chart_version, provider, env.gitops.poll_interval_s, env.gitops.argocd_version)

    def apply(self, parent: pulumi.Resource, name: str, kind: str, manifest: Manifest,
              depends_on: list[pulumi.Resource]) -> pulumi.Resource:
        opts = pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=depends_on)
        if kind == "Namespace":
            return k8s.core.v1.Namespace(name, metadata=manifest.apply(lambda m: m["metadata"]), opts=opts)
        # An Argo CD object; its kind is part of the resource's type token: a plain string.
        return k8s.apiextensions.CustomResource(
            name, api_version=ARGOCD_API_VERSION, kind=kind, metadata=manifest.apply(lambda m: m["metadata"]),
            spec=manifest.apply(lambda m: m["spec"]), opts=opts)

    def argocd(self, parent: pulumi.Resource, name: str, namespace: pulumi.Resource,
               namespace_name: str) -> list[pulumi.Resource]:
        return [k8s.helm.v3.Release(
            name,
            name="argocd",
            chart="argo-cd",
            version=self.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ARGOCD_REPO),
            namespace=namespace_name,
            values=argocd_values(self.poll_interval_s, self.argocd_version),
            atomic=True,
            opts=pulumi.ResourceOptions(parent=parent, provider=self.provider, depends_on=[namespace]),
        )]


@dataclass(frozen=True)
class ManifestInstall:
    """Argo CD's CRDs and configuration as manifests (namespaced ones go to Argo CD's
    namespace), applied through `kubeconfig`; its controllers run elsewhere."""

    kubeconfig: str
    manifests: tuple[dict[str, Any], ...]

    def apply(self, parent: pulumi.Resource, name: str, _kind: str, manifest: Manifest | dict[str, Any],
              depends_on: list[pulumi.Resource]) -> pulumi.Resource:
        return KubernetesObject(name, kubeconfig=self.kubeconfig, manifest=manifest,
                                opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on))

    def argocd(self, parent: pulumi.Resource, name: str, namespace: pulumi.Resource,
               namespace_name: str) -> list[pulumi.Resource]:
        return [self.apply(parent, f"{name}-{_slug(m)}", m["kind"], _in_namespace(m, namespace_name), [namespace])
                for m in self.manifests]


@dataclass(frozen=True)
class GitOpsBootstrapArgs:
    env_name: str
    namespace: str
    install: HelmInstall | ManifestInstall
    repo_url: str
    branch: str
    path: str
    # apps.cloud.CloudMetadata as data (the stack's `gitops_metadata` output)
    cloud: pulumi.Input[dict[str, Any]]
    # relative path -> digest, and the two bootstrap manifests, from one render of the tree
    files: pulumi.Input[dict[str, str]]
    bootstrap: dict[str, dict[str, Any]]
    # What Argo CD clones, when it differs from where the tree is published (`local`: a git
    # server in front of the bare repository); None: `repo_url`.
    clone_url: str | None = None
    # What the environment sets beyond its file: the publish step renders the very same env.
    overrides: dict[str, Any] = field(default_factory=dict)
    # "user:password" (a secret) for a registry that is not ECR: the publish step checks it holds
    # every digest the tree names. ECR is asked with the caller's AWS credentials.
    registry_credentials: pulumi.Input[str] | None = None

    @classmethod
    def for_env(cls, env: Environment, *, install: HelmInstall | ManifestInstall, cloud: pulumi.Input[dict[str, Any]],
                clone_url: str | None = None, registry_credentials: pulumi.Input[str] | None = None) -> GitOpsBootstrapArgs:
        """Everything from the environment; only what the stack created (CloudMetadata), how
        Argo CD is installed and where it clones from come from outside."""
        files = pulumi.Output.from_input(cloud).apply(
            lambda c: tree_digests(env, CloudMetadata.model_validate(c), clone_url))
        return cls(env_name=env.name, namespace=env.gitops.argocd_namespace, install=install,
                   repo_url=env.gitops.repo_url, branch=env.gitops.branch, path=env.gitops.path,
                   cloud=cloud, files=files, bootstrap=bootstrap_objects(env, clone_url),
                   clone_url=clone_url, overrides=overrides_of(env), registry_credentials=registry_credentials)


class GitOpsBootstrap(pulumi.ComponentResource):
    commit: pulumi.Output[str]
    repo_url: str

    def __init__(self, name: str, args: GitOpsBootstrapArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        install = args.install
        namespace = install.apply(self, f"{name}-namespace", "Namespace", pulumi.Output.from_input(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.namespace, "labels": {
                "app.kubernetes.io/part-of": "ml-platform",
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            }}}), [])
        argocd = install.argocd(self, f"{name}-argocd", namespace, args.namespace)

        published = GitOpsPublish(
            f"{name}-publish", env_name=args.env_name, repo_url=args.repo_url, branch=args.branch, path=args.path,
            cloud=args.cloud, files=args.files, clone_url=args.clone_url,
            overrides=args.overrides, registry_credentials=args.registry_credentials,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The add-ons' project exists in cloud environments only.
        projects = [
            install.apply(self, f"{name}-{path.removeprefix('bootstrap/').removesuffix('.yaml')}", "AppProject",
                          pulumi.Output.from_input(args.bootstrap[path]), argocd)
            for path in PROJECT_FILES if path in args.bootstrap
        ]
        root = pulumi.Output.from_input(with_cascade(args.bootstrap[ROOT_APP_FILE]))
        install.apply(self, f"{name}-root-app", "Application", root, [*argocd, *projects, published])

        self.repo_url = args.repo_url
        self.commit = published.commit
        self.register_outputs({"repo_url": args.repo_url, "commit": self.commit})


CLUSTER_SCOPED = frozenset({"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"})


def _in_namespace(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Argo CD's namespaced objects go to Argo CD's namespace; CRDs and cluster roles stay cluster-scoped."""
    if manifest.get("kind") in CLUSTER_SCOPED:
        return manifest
    out = copy.deepcopy(manifest)
    out["metadata"]["namespace"] = namespace
    return out


def _slug(manifest: dict[str, Any]) -> str:
    """A resource name per object: kind and name, lower case (CRD names carry their group)."""
    return f"{manifest['kind'].lower()}-{manifest['metadata']['name']}"
