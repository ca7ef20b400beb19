"""Infra: the Pulumi program, offline plan under Pulumi's mocks."""

from __future__ import annotations

import typer
from rich.console import Console

from apps.cli_errors import fail, one_line_errors

app = typer.Typer(no_args_is_help=True, help="Infra: the Pulumi program, offline plan under Pulumi's mocks.")


@app.command("plan")
def plan(
    env: str = typer.Argument(..., help="Environment name (dev, staging, prod) or a path to an environment file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a tree."),
) -> None:
    """Run the Pulumi program for ENV under Pulumi's mocks (no cloud, no credentials, no CLI) and print
    the resource tree, counts per type and the key inputs."""
    from environments import EnvironmentFileError, load_environment

    with one_line_errors(EnvironmentFileError):
        environment = load_environment(env)
    try:
        # Imported here: pulumi is the infra extra, and its import costs seconds other commands should not pay.
        from infra.errors import InfraError
        from infra.plan import build_report, render_report
    except ImportError as e:
        fail(f"the offline plan needs the infra extra ({e.name} is missing): pip install -e '.[infra]'")
    with one_line_errors(InfraError):
        report = build_report(environment)
    console = Console()
    if as_json:
        console.print_json(report.model_dump_json())
    else:
        console.print(render_report(report))


@app.command("destroy-order")
def destroy_order(env: str = typer.Argument(..., help="Environment name or path to an environment file.")) -> None:
    """Print the destroy steps for ENV, with the exact resource URNs, that avoid the "cluster unreachable" trap."""
    from environments import EnvironmentFileError, load_environment

    with one_line_errors(EnvironmentFileError):
        environment = load_environment(env)
    if environment.aws is None:
        fail(f"environment {environment.name!r} has no aws block: there is no stack to destroy")
    from infra.destroy import destroy_steps
    from infra.errors import InfraError
    from infra.mocks import run_program

    with one_line_errors(InfraError):
        steps = destroy_steps(environment, run_program(environment))
    console = Console()
    for n, step in enumerate(steps, 1):
        console.print(f"[bold]{n}. {step.title}[/]\n   [dim]{step.why}[/]", soft_wrap=True)
        for command in step.commands:
            console.print(f"   {command}", highlight=False, soft_wrap=True, markup=False)
