"""The one command line: `mlops <room> <command>`. Each room owns its group; this only assembles."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from apps.cli import app as apps_app
from apps.cli_errors import one_line_errors
from argocd.cli import app as argocd_app
from environments import EnvironmentFileError, environment_names, load_environment
from harness.clusters.cli import app as cluster_app
from harness.containers.cli import app as images_app
from harness.containers.cli import push_cmd
from harness.load.cli import app as load_app
from harness.stack_cli import app as stack_app
from harness.toolchain.cli import app as toolchain_app
from harness.up import command as up_command
from infra.cli import app as infra_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="GitOps toolkit for ML pipelines on EKS.")
env_app = typer.Typer(no_args_is_help=True, help="Environments: list, check and show them.")
harness_app = typer.Typer(no_args_is_help=True, help="Harness: toolchain, clusters, images, load gates.")
harness_app.add_typer(toolchain_app, name="toolchain")
harness_app.add_typer(cluster_app, name="cluster")
harness_app.add_typer(images_app, name="images")
harness_app.add_typer(load_app, name="load")

images_top = typer.Typer(no_args_is_help=True, help="Images: push the app images to an environment's registry.")
images_top.command("push")(push_cmd)

app.command("up")(up_command)
app.add_typer(images_top, name="images")
app.add_typer(stack_app, name="stack")
app.add_typer(env_app, name="env")
app.add_typer(apps_app, name="apps")
app.add_typer(argocd_app, name="argocd")
app.add_typer(infra_app, name="infra")
app.add_typer(harness_app, name="harness")

console = Console()


@env_app.command("list")
def env_list() -> None:
    """The shipped environments and their shape."""
    table = Table("env", "cloud", "node groups", "gitops")
    for name in environment_names():
        env = load_environment(name)
        where = f"{env.aws.region} / {env.aws.cluster.name}" if env.aws else "local"
        groups = ", ".join(f"{n} ({g.kind} {g.min_size}-{g.max_size})" for n, g in env.node_groups.items())
        table.add_row(name, where, groups, f"{env.gitops.repo_url} [{env.gitops.branch}] {env.gitops.path}")
    console.print(table)


@env_app.command("check")
def env_check(names: list[str] = typer.Argument(None, help="Names or paths; all shipped when omitted.")) -> None:
    """Load environments strictly; the first bad field is named and the exit is non-zero."""
    for name in names or environment_names():
        with one_line_errors(EnvironmentFileError):
            load_environment(name)
        console.print(f"[green]ok[/] {name}")


@env_app.command("show")
def env_show(name: str = typer.Argument("local")) -> None:
    """The fully merged environment, as the other rooms see it."""
    with one_line_errors(EnvironmentFileError):
        env = load_environment(name)
    console.print_json(env.model_dump_json())


if __name__ == "__main__":
    app()
