"""The `local` stack: no cloud, only the Kubernetes half of the program, on a local cluster.

Argo CD's namespace, CRDs and configuration, the AppProject, the root application and the
publish step: the same `GitOpsBootstrap` a cloud stack runs, installing Argo CD from
manifests (`ManifestInstall`) instead of its Helm chart. Stack configuration, which
`mlops up local` sets (harness/stack.py):

    mlops:kubeconfig        the local cluster's kubeconfig
    mlops:argocdManifests   a YAML file of Argo CD's CRDs and configuration at the pinned version
    mlops:gitopsCloneUrl    what Argo CD clones (a git server in front of the bare repository);
                            optional, default: the environment's gitops.repo_url
    mlops:registryCredentials  the local registry's "user:password" (secret), with which the
                            publish step checks that it holds every image digest the tree names
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from apps.cloud import CloudMetadata
from environments import Environment
from infra.errors import LocalStackError
from infra.gitops import GitOpsBootstrap, GitOpsBootstrapArgs, ManifestInstall

TOKEN = "mlops:infra:LocalPlatform"
CONFIG = "mlops"


@dataclass(frozen=True)
class LocalTarget:
    """Where the local stack goes: the cluster, Argo CD's manifests, the URL Argo CD clones."""

    kubeconfig: str
    argocd_manifests: tuple[dict[str, Any], ...]
    clone_url: str | None = None
    registry_credentials: pulumi.Input[str] | None = None

    @classmethod
    def from_config(cls, config: pulumi.Config | None = None) -> LocalTarget:
        config = config or pulumi.Config(CONFIG)
        kubeconfig, manifests = config.get("kubeconfig"), config.get("argocdManifests")
        if not kubeconfig or not manifests:
            missing = [f"{CONFIG}:{k}" for k, v in (("kubeconfig", kubeconfig), ("argocdManifests", manifests)) if not v]
            raise LocalStackError(f"the local stack needs stack config {', '.join(missing)} (`mlops up local` sets them)")
        if not Path(kubeconfig).is_file():
            raise LocalStackError(f"{CONFIG}:kubeconfig: {kubeconfig} is not a file: is the local cluster up?")
        return cls(kubeconfig=kubeconfig, argocd_manifests=read_manifests(Path(manifests)),
                   clone_url=config.get("gitopsCloneUrl"), registry_credentials=config.get_secret("registryCredentials"))


def read_manifests(path: Path) -> tuple[dict[str, Any], ...]:
    try:
        # libyaml's loader when present: Argo CD's CRDs are 1.8 MB of YAML (2 s in pure Python)
        docs = [d for d in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]
    except (OSError, yaml.YAMLError) as e:
        raise LocalStackError(f"{CONFIG}:argocdManifests: cannot read {path}: {e}") from e
    bad = [i for i, d in enumerate(docs) if not (isinstance(d, dict) and d.get("kind") and (d.get("metadata") or {}).get("name"))]
    if not docs or bad:
        raise LocalStackError(f"{CONFIG}:argocdManifests: {path}: " + (
            f"document {bad[0] + 1} has no kind or metadata.name" if bad else "no manifests"))
    return tuple(docs)


class LocalPlatform(pulumi.ComponentResource):
    gitops: GitOpsBootstrap

    def __init__(self, name: str, env: Environment, target: LocalTarget,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        install = ManifestInstall(kubeconfig=target.kubeconfig, manifests=target.argocd_manifests)
        # Local images come from the environment's own registry (the harness's, by the digests its
        # push reported: images.registry and images.digests); local workloads use no cloud role,
        # and no chart add-on needs a cloud id.
        self.gitops = GitOpsBootstrap(f"{name}-gitops", GitOpsBootstrapArgs.for_env(
            env, install=install, cloud=CloudMetadata().model_dump(), clone_url=target.clone_url,
            registry_credentials=target.registry_credentials),
            opts=pulumi.ResourceOptions(parent=self))
        self.outputs = {"gitops_repo": self.gitops.repo_url, "gitops_commit": self.gitops.commit}
        self.register_outputs(self.outputs)
