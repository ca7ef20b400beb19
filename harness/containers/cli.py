"""Images and containers: Docker engine, base image, app images (`mlops harness images ...`)."""

from __future__ import annotations

import time

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
