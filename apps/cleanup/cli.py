"""Cleanup job: retention of run data."""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table

from apps.cli_errors import one_line_errors, print_error

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Cleanup job: retention of run data.")
console = Console()


def run_cleanup(environ: dict[str, str]) -> int:
    """What `python -m apps.cleanup` does: settings from env, apply retention, print a summary."""
    from apps.cleanup.exceptions import CleanupError
    from apps.cleanup.retention import apply_retention
    from apps.cleanup.settings import CleanupSettings
    from apps.observability import configure_logging
    from apps.storage import StorageError, open_store

    try:
        settings = CleanupSettings.from_env(environ)
        configure_logging("cleanup", settings.log_level)
        store = open_store(settings.data_uri, endpoint_url=settings.s3_endpoint_url)
        report = apply_retention(store, success_hours=settings.success_retention_hours,
                                 failed_hours=settings.failed_retention_hours, dry_run=settings.dry_run)
    except (CleanupError, StorageError, ValueError) as e:
        print_error(str(e))
        return 1
    table = Table(title=f"retention on {report.store}" + (" (dry run: nothing removed)" if report.dry_run else ""))
    for col in ("run", "status", "age h", "action", "objects", "reason"):
        table.add_column(col)
    for d in report.decisions:
        table.add_row(d.run_id, d.status, "-" if d.age_hours is None else f"{d.age_hours:.1f}", d.action,
                      str(len(d.removed_keys)), d.reason)
    Console(stderr=True).print(table)
    return 0


@app.command("run")
def run(env: str = typer.Option("local", help="environment whose retention hours apply when unset"),
        data_uri: str = typer.Option(None, help="data store URI (default DATA_URI, else the environment's)"),
        dry_run: bool = typer.Option(None, "--dry-run/--no-dry-run", help="report only; remove nothing")) -> None:
    """Apply retention now (what the CronJob runs), with defaults from the environment file."""
    from environments import EnvironmentFileError, load_environment

    with one_line_errors(EnvironmentFileError):
        environment = load_environment(env)
    c = environment.apps.cleanup
    defaults = {"DATA_URI": environment.storage.data_uri, "SUCCESS_RETENTION_HOURS": str(c.success_retention_hours),
                "FAILED_RETENTION_HOURS": str(c.failed_retention_hours), "DRY_RUN": str(c.dry_run).lower()}
    if environment.storage.endpoint_url:
        defaults["S3_ENDPOINT_URL"] = environment.storage.endpoint_url
    merged = {**defaults, **os.environ}
    if data_uri:
        merged["DATA_URI"] = data_uri
    if dry_run is not None:
        merged["DRY_RUN"] = str(dry_run).lower()
    raise typer.Exit(run_cleanup(merged))
