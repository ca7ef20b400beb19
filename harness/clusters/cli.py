"""Clusters: create, reuse and delete kwok, kind or existing clusters."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from apps.cli_errors import one_line_errors
from apps.cloud import CloudMetadata, CloudMetadataError
from apps.waiting import WaitTimeoutError
from argocd.render import render_environment
from environments import EnvironmentFileError, load_environment
from harness.clusters.deploy import apply_tree, static_volumes, wait_deployment_available
from harness.clusters.errors import ClusterError, UnknownProviderError
from harness.clusters.kube import client_for
from harness.clusters.providers import PROVIDER_NAMES, ClusterProvider, KwokProvider, make_provider
from harness.clusters.nodes import simulated_cloud
from harness.toolchain import ToolchainError

app = typer.Typer(no_args_is_help=True, help="Clusters: create, reuse and delete kwok, kind or existing clusters.")
console = Console()

PROVIDER = typer.Option("kwok", "--provider", "-p", help=" | ".join(PROVIDER_NAMES))
ENV = typer.Option("local", "--env", "-e", help="environment whose node groups shape the cluster")


def _provider(name: str, kubeconfig: Path | None = None) -> ClusterProvider:
    with one_line_errors(UnknownProviderError):
        return make_provider(name, kubeconfig=kubeconfig)


def _name(name: str | None, env: str) -> str:
    return name or f"mlops-{env}"


@app.command("create")
def create(env: str = ENV, provider: str = PROVIDER, name: str = typer.Option(None, help="default mlops-<env>")) -> None:
    """Create (or reuse) a cluster shaped like ENV; prints its kubeconfig path. Delete it with `delete`."""
    chosen = _provider(provider)
    with one_line_errors(EnvironmentFileError, ClusterError, ToolchainError):
        environment = load_environment(env)
        with console.status(f"creating {provider} cluster {_name(name, env)} shaped like {env}"):
            info = chosen.create(_name(name, env), env=environment)
    verb = "created" if info.created else "reused"
    console.print(f"[green]{verb}[/] {info.provider}/{info.name} in {info.seconds:.1f}s", highlight=False)
    console.print(f"export KUBECONFIG={info.kubeconfig}", highlight=False)


@app.command("delete")
def delete(env: str = ENV, provider: str = PROVIDER, name: str = typer.Option(None, help="default mlops-<env>")) -> None:
    """Delete a cluster this toolkit created (a no-op when it is gone; `existing` never deletes)."""
    with one_line_errors(ClusterError, ToolchainError):
        _provider(provider).delete(_name(name, env))
    console.print(f"deleted {provider}/{_name(name, env)}", highlight=False)


@app.command("list")
def list_clusters() -> None:
    """kwok clusters on this machine (kwokctl's view)."""
    with one_line_errors(ClusterError, ToolchainError):
        names = KwokProvider().clusters()
    table = Table("provider", "cluster")
    for cluster in names:
        table.add_row("kwok", cluster)
    console.print(table)


@app.command("deploy")
def deploy(
    env: str = ENV,
    provider: str = PROVIDER,
    name: str = typer.Option(None, help="default mlops-<env>"),
    kubeconfig: Path = typer.Option(None, help="for --provider existing"),
    stack_outputs: Path = typer.Option(
        None, "--stack-outputs", help="a cloud env on its own cluster (--provider existing): `pulumi stack output "
        "--json` of its stack; elsewhere stand-in ids are used"),
    timeout: float = typer.Option(180, help="seconds to wait for each Deployment"),
) -> None:
    """Apply ENV's rendered tree to a running cluster (server-side, sync-wave order) and wait for its Deployments."""
    chosen = _provider(provider, kubeconfig)
    with one_line_errors(EnvironmentFileError, ClusterError, ToolchainError, WaitTimeoutError, CloudMetadataError):
        environment = load_environment(env)
        target = chosen.kubeconfig(_name(name, env))
        client = client_for(target)
        cloud = CloudMetadata.from_stack_outputs(stack_outputs) if stack_outputs else simulated_cloud(environment)
        tree = render_environment(environment, cloud=cloud)
        if provider == "kwok":
            static_volumes(client, tree)
        applied = apply_tree(client, tree, wait_claims=provider == "kwok")
        for obj in applied.objects:
            console.print(f"applied wave {obj.wave:>2} {obj.ref}", highlight=False)
        for ref, why in applied.skipped.items():
            console.print(f"[yellow]skipped[/] {ref}: {why}", highlight=False)
        for dep in applied.of_kind("Deployment"):
            with console.status(f"waiting for {dep.ref}"):
                wait_deployment_available(client, dep.name, dep.namespace or "default", timeout=timeout)
            console.print(f"[green]available[/] {dep.ref}", highlight=False)
