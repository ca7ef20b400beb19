"""Argo CD's own controllers as local processes against a (kwok) cluster, with Redis from the
machine and a local git server: the GitOps loop for real, where simulated nodes run no pods.

    with git_daemon(base) as git, argocd_local(kubeconfig, namespace="argocd", workdir=tmp) as argocd:
        ...
"""

from harness.argocd_local.applications import AppStatus, applications, describe_applications, wait_applications
from harness.argocd_local.errors import ArgoLocalError
from harness.argocd_local.gitserver import GitDaemon, git_daemon
from harness.argocd_local.processes import ArgoCDLocal, argocd_local

__all__ = [
    "AppStatus",
    "ArgoCDLocal",
    "ArgoLocalError",
    "GitDaemon",
    "applications",
    "argocd_local",
    "describe_applications",
    "git_daemon",
    "wait_applications",
]
