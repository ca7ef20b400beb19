"""`mlops stack preview|destroy [ENV]`: the local stack's other Pulumi operations, on the
cluster `mlops up` made (its `pulumi up` is step 3 of the main job)."""

from __future__ import annotations

from pathlib import Path

import typer
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from pulumi.automation import OpType
from rich.console import Console

from apps.cli_errors import one_line_errors
from argocd.render import render_environment
from environments import Environment, EnvironmentFileError, load_environment
from harness.argocd_local.errors import ArgoLocalError
from harness.argocd_local.loop import gitops_loop
from harness.clusters.errors import ClusterError
from harness.clusters.kube import client_for
from harness.clusters.localstore import remove_store
from harness.clusters.nodes import for_simulated_nodes
from harness.clusters.providers import LOCAL_PROVIDERS, make_provider
from harness.stack import GIT_PORT, LocalSite, StackError, run
from harness.toolchain import ToolchainError
from infra.errors import InfraError
from infra.kube_api import found

app = typer.Typer(no_args_is_help=True, help="The local stack: pulumi preview and destroy on the local cluster.")
console = Console()
FAILURES = (EnvironmentFileError, StackError, ClusterError, ArgoLocalError, ToolchainError, InfraError)

ENV = typer.Argument("local", help="A local environment (no aws block).")
PROVIDER = typer.Option("auto", "--provider", "-p",
                        help="kind | kwok: the provider `mlops up` used; auto: the one whose cluster exists")
GIT = typer.Option(GIT_PORT, "--git-port", help="Port of the git server Argo CD clones from (127.0.0.1).")


def _site(env_name: str, provider: str, git_port: int) -> tuple[LocalSite, Path]:
    env: Environment = load_environment(env_name)
    if env.aws is not None:
        raise StackError(f"{env.name} is a cloud environment: use `pulumi preview|destroy -s {env.name}`")
    if provider != "auto" and provider not in LOCAL_PROVIDERS:
        raise StackError(f"unknown provider {provider!r}; expected auto or one of {', '.join(LOCAL_PROVIDERS)}")
    if provider == "auto":
        name = LocalSite.of(env).cluster
        provider = next((p for p in LOCAL_PROVIDERS if make_provider(p).exists(name)), "")
        if not provider:
            raise StackError(f"no cluster {name} (kind or kwok): `mlops up {env.name}` makes it and the stack")
    if provider == "kwok":
        env = for_simulated_nodes(env)
    site = LocalSite.of(env, git_port=git_port, in_cluster=provider == "kind")
    clusters = make_provider(provider)
    if not clusters.exists(site.cluster):
        raise StackError(f"no {provider} cluster {site.cluster}: `mlops up {env.name}` makes it and the stack")
    return site, clusters.create(site.cluster, env=env).kubeconfig


@app.command("preview")
def preview(env_name: str = ENV, provider: str = PROVIDER, git_port: int = GIT) -> None:
    """What `pulumi up` would change now (after an edit of environments/ENV.yaml, say), with the diff."""
    with one_line_errors(*FAILURES):
        site, kubeconfig = _site(env_name, provider, git_port)
        result = run("preview", lambda: site.stack(kubeconfig).preview(diff=True, on_output=print))
        changes = ", ".join(f"{n} {k}" for k, n in sorted(result.change_summary.items()))
        console.print(f"[bold]{site.env.name}[/]: {changes}", highlight=False)


@app.command("destroy")
def destroy(env_name: str = ENV, provider: str = PROVIDER, git_port: int = GIT) -> None:
    """Remove what the stack made. Argo CD runs meanwhile, so the root application's cascade
    removes the apps first; the GitOps repository's history is left alone."""
    with one_line_errors(*FAILURES):
        site, kubeconfig = _site(env_name, provider, git_port)
        stack = site.stack(kubeconfig)
        if not found(client_for(kubeconfig), CustomResourceDefinition, "applications.argoproj.io"):
            # no Argo CD left on the cluster: nothing to cascade
            result = run("destroy", lambda: stack.destroy(on_output=print))
        elif site.in_cluster:  # Argo CD runs in the cluster until the stack removes it, after the cascade
            result = run("destroy", lambda: stack.destroy(on_output=print))
            removed = remove_store(client_for(kubeconfig), site.env,
                                   tree=render_environment(site.env, repo_url=site.clone_url))
            console.print(f"local store and its keys removed: namespaces {', '.join(removed)}", highlight=False)
        else:
            with gitops_loop(kubeconfig, env=site.env, workdir=site.state / "argocd", repo=site.repo,
                             git_port=git_port, argocd_installed=True):
                result = run("destroy", lambda: stack.destroy(on_output=print))
        deleted = (result.summary.resource_changes or {}).get(OpType.DELETE, 0)
        console.print(f"[bold]{site.env.name}[/]: {deleted} resources deleted; {site.repo} keeps its history",
                      highlight=False)
