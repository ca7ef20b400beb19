"""Images and containers: Docker engine, base image, app images (`mlops harness images ...`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from apps.cli_errors import one_line_errors
from apps.waiting import WaitTimeoutError
from harness.containers.errors import ContainersError

app = typer.Typer(no_args_is_help=True, help="Images and containers: Docker engine, base image, app images.")
console = Console()


@app.command("engine")
def engine_cmd() -> None:
    """Make sure a Docker engine answers (starts Debian's dockerd in the background if none does)."""
    from harness.containers.engine import start_engine

    with one_line_errors(ContainersError, WaitTimeoutError):
        engine = start_engine()
    how = f"started dockerd (pid {engine.started.pid}, log {engine.log_path})" if engine.started else "already running"
    console.print(f"[green]ok[/] Docker {engine.version}: {how}")


@app.command("build")
def build_cmd(
    base: str = typer.Option("auto", envvar="MLOPS_BASE_IMAGE",
                             help="auto (python:3.11-slim if a registry gives it, else local), local, or an image"),
    minio: bool = typer.Option(True, help="also build the MinIO image from the toolchain's binary"),
) -> None:
    """Build the base, app and MinIO images; only what changed is rebuilt (content-hash tags)."""
    from harness.containers.build import ensure_images
    from harness.containers.engine import start_engine
    from harness.containers.settings import default_settings

    started = time.monotonic()
    with one_line_errors(ContainersError, WaitTimeoutError):
        engine = start_engine()
        with console.status("building images…") as status:
            images = ensure_images(engine.client, settings=default_settings(), base_choice=base, with_minio=minio,
                                   log=lambda line: status.update(line))
    table = Table("image", "tag", "built", "seconds")
    table.add_row("base", images.base, "", "")
    for image in images.images:
        table.add_row(image.name, image.tag, "yes" if image.built else "cached", f"{image.seconds:.1f}")
    console.print(table)
    console.print(f"total {time.monotonic() - started:.1f}s")


@app.command("clean")
def clean_cmd() -> None:
    """Remove the containers, networks and volumes kept between runs, and those of dead sessions."""
    from harness.containers.cleanup import remove_kept, remove_stale
    from harness.containers.engine import start_engine
    from harness.containers.settings import default_settings

    with one_line_errors(ContainersError, WaitTimeoutError):
        engine = start_engine()
    removed = remove_kept(engine.client) + remove_stale(engine.client, default_settings())
    for line in removed:
        console.print(f"removed {line}")
    console.print(f"[green]ok[/] {len(removed)} object(s) removed")


def push_cmd(
    env_name: str = typer.Argument(..., metavar="ENV", help="local, or a cloud environment whose stack is up"),
    stack_outputs: Path | None = typer.Option(
        None, help="a cloud stack's `pulumi stack output --json` (its gitops_metadata names the ECR prefix)"),
    set_config: bool = typer.Option(True, help="set the stack's mlops:imageDigests (`pulumi config set`)"),
) -> None:
    """Build what changed and push the app images to the environment's registry: the local
    registry for `local`, the stack's ECR for a cloud one. A rerun with nothing changed pushes
    nothing. The digests go to the stack's config, and from there into the tree."""
    from apps.cloud import CloudMetadata, CloudMetadataError
    from environments import EnvironmentFileError, load_environment
    from harness.stack import StackError, record_pushed
    from harness.containers import registry
    from harness.containers.build import ensure_images
    from harness.containers.engine import start_engine
    from harness.containers.settings import default_settings

    with one_line_errors(ContainersError, WaitTimeoutError, EnvironmentFileError, CloudMetadataError, StackError):
        env = load_environment(env_name)
        if env.aws is not None and stack_outputs is None:
            raise ContainersError(f"env {env.name}: pushing to its ECR needs the stack's outputs: "
                                  f"--stack-outputs FILE (FILE from `pulumi stack output --json --stack {env.name}`)")
        # ECR's login first: a refused one costs no build.
        target = registry.ecr_target(CloudMetadata.from_stack_outputs(stack_outputs).registry) if stack_outputs else None
        engine = start_engine()
        settings = default_settings()
        with console.status("building images…") as status:
            def log(line: str) -> None:
                status.update(line)
                console.print(line, highlight=False, markup=False)

            # `local` also pulls the base (probe pods) and MinIO (its store) from its registry.
            images = ensure_images(engine.client, settings=settings, with_minio=target is None, log=log)
            if target is None:
                pushed = registry.push_local(engine.client, images.by_repository(), settings=settings, log=log)
            else:
                pushed = registry.PushedImages(target, registry.push_images(engine.client, target, images.tags(), log=log))
        where = record_pushed(pushed.deployed(env)) if set_config else "nowhere (--no-set-config)"
    table = Table("image", "reference", "pushed")
    for name, push in sorted(pushed.images.items()):
        table.add_row(name, pushed.reference(name), "yes" if push.pushed else "already there")
    console.print(table)
    console.print(f"[green]ok[/] {pushed.count()} of {len(pushed.images)} pushed to {pushed.target.host}; "
                  f"digests recorded in {where}")
