"""GitOps: render, validate, diff and publish an environment's tree.

mlops argocd render local --out build/gitops/local
mlops argocd validate prod
mlops argocd diff prod --repo-url /tmp/gitops.git
mlops argocd publish prod --repo-url /tmp/gitops.git
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from apps.cli_errors import one_line_errors
from apps.cloud import CloudMetadata, CloudMetadataError
from argocd.errors import GitOpsError, ValidationFailed
from environments import EnvironmentFileError, load_environment
from environments.model import Environment

app = typer.Typer(no_args_is_help=True, help="GitOps: render, validate, diff and publish an environment's tree.")
console = Console()

ENV_ARG = typer.Argument(..., help="Environment name (local, dev, staging, prod) or path to an env file.")
TAG_OPT = typer.Option(None, "--image-tag", help="Override env.images.tag (e.g. a content-hash tag).")
REPO_OPT = typer.Option(None, "--repo-url", help="Override env.gitops.repo_url (a local path is a bare repo).")
STACK_OPT = typer.Option(
    None, "--stack-outputs",
    help="`pulumi stack output --json` of the env's stack: render with its registry, IAM roles and ids, "
         "exactly as `pulumi up` publishes.")


FAILURES = (GitOpsError, EnvironmentFileError, CloudMetadataError)


def _cloud(stack_outputs: Path | None) -> CloudMetadata | None:
    return CloudMetadata.from_stack_outputs(stack_outputs) if stack_outputs else None


def _env(name: str, repo_url: str | None) -> Environment:
    env = load_environment(name)
    if repo_url:
        env = env.model_copy(update={"gitops": env.gitops.model_copy(update={"repo_url": repo_url})})
    return env


@app.command()
def render(
    env_name: str = ENV_ARG,
    out: Path = typer.Option(None, "--out", help="Directory to write (default: build/gitops/<env>)."),
    image_tag: str = TAG_OPT,
    repo_url: str = REPO_OPT,
    stack_outputs: Path = STACK_OPT,
) -> None:
    """Render the tree into a directory (files of an earlier render that are gone are removed)."""
    from argocd.render import render_environment

    with one_line_errors(*FAILURES):
        env = _env(env_name, repo_url)
        tree = render_environment(env, image_tag=image_tag, cloud=_cloud(stack_outputs))
        target = out or Path("build/gitops") / env.name
        tree.write(target)
        console.print(f"[green]rendered[/] {env.name}: {len(tree)} files in {target}")


@app.command()
def validate(env_name: str = ENV_ARG, image_tag: str = TAG_OPT, stack_outputs: Path = STACK_OPT) -> None:
    """Schemas (Kubernetes of the env's version, Argo CD and ServiceMonitor CRDs) and policy; every finding listed."""
    from argocd.render import render_environment
    from argocd.validate import validate_tree

    with one_line_errors(*FAILURES):
        env = _env(env_name, None)
        report = validate_tree(env, render_environment(env, image_tag=image_tag, cloud=_cloud(stack_outputs)))
        for finding in report.findings:
            console.print(f"[red]finding[/] {finding}", highlight=False, soft_wrap=True)
        if report.findings:
            raise ValidationFailed(env.name, report.findings)
        console.print(
            f"[green]valid[/] {env.name}: {report.checked} objects against Kubernetes {report.kubernetes_version} "
            "and the CRD schemas (Argo CD, Prometheus operator, External Secrets), policy clean"
        )


@app.command()
def diff(env_name: str = ENV_ARG, image_tag: str = TAG_OPT, repo_url: str = REPO_OPT,
         stack_outputs: Path = STACK_OPT) -> None:
    """The unified diff a publish would commit; writes nothing."""
    from argocd.publish import diff as git_diff
    from argocd.render import render_environment

    with one_line_errors(*FAILURES):
        env = _env(env_name, repo_url)
        text = git_diff(env, render_environment(env, image_tag=image_tag, cloud=_cloud(stack_outputs)))
        if text:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"no changes for {env.name}")


@app.command()
def publish(
    env_name: str = ENV_ARG,
    image_tag: str = TAG_OPT,
    repo_url: str = REPO_OPT,
    stack_outputs: Path = STACK_OPT,
    source: str = typer.Option(None, "--source-commit", help="Source commit named in the message (default: HEAD)."),
    show_diff: bool = typer.Option(True, "--show-diff/--no-show-diff", help="Print the diff being committed."),
) -> None:
    """Validate, then commit the tree to the env's GitOps repo (no commit when nothing changed)."""
    from argocd.publish import mask
    from argocd.publish import publish as git_publish
    from argocd.render import render_environment

    with one_line_errors(*FAILURES):
        env = _env(env_name, repo_url)
        result = git_publish(env, render_environment(env, image_tag=image_tag, cloud=_cloud(stack_outputs)),
                             source=source)
        where = escape(f"{mask(env.gitops.repo_url)} [{result.branch}] {result.path}")
        if not result.changed:
            console.print(f"[green]up to date[/] {env.name}: {where}, no commit", highlight=False)
            return
        if show_diff:
            console.print(result.diff, markup=False, highlight=False, soft_wrap=True)
        console.print(f"[green]published[/] {env.name}: {result.commit} to {where}", highlight=False)


@app.command()
def job(
    env_name: str = ENV_ARG,
    partition: str = typer.Option(None, "--partition", help="YYYYMMDD (or YYYY-MM-DD): one manual run of that "
                                  "partition, named pcc-manual-run-YYYYMMDD."),
    start: str = typer.Option(None, "--start", help="YYYYMMDD: first day of a backfill (an Indexed Job)."),
    end: str = typer.Option(None, "--end", help="YYYYMMDD: last day of a backfill."),
    image_tag: str = TAG_OPT,
) -> None:
    """Print a validated batch Job for `kubectl create -f -`: one partition, or a backfill range."""
    from datetime import UTC, datetime, timedelta

    from apps.batch import workload as batch
    from apps.k8s import BuildError
    from argocd.errors import RenderError
    from argocd.render import RenderedObject, RenderedTree, dump, with_tag
    from argocd.validate import validate_or_raise

    def day(value: str, flag: str) -> datetime:
        for form in ("%Y%m%d", "%Y-%m-%d"):
            try:
                return datetime.strptime(value, form)
            except ValueError:
                continue
        raise RenderError(f"{flag} {value!r}: expected a date as YYYYMMDD (or YYYY-MM-DD)")

    with one_line_errors(*FAILURES):
        env = with_tag(_env(env_name, None), image_tag)
        if (start is None) != (end is None) or (partition and start):
            raise RenderError("give either --partition, or both --start and --end")
        try:
            if start and end:
                manifest = batch.backfill_job(env, start=day(start, "--start").date(), end=day(end, "--end").date())
            else:
                # Always a pinned partition (yesterday UTC by default): the Job's name carries it.
                pinned = day(partition, "--partition") if partition else datetime.now(UTC) - timedelta(days=1)
                manifest = batch.manual_job(env, partition=pinned.date())
        except BuildError as e:
            raise RenderError(str(e)) from None
        obj = RenderedObject(path="job.yaml", app=batch.APP, wave=0, manifest=manifest, synced=False)
        validate_or_raise(env, RenderedTree(env.name, [obj]))
        typer.echo(dump(manifest).decode(), nl=False)
