"""Fraud streaming pipeline: the four stages over a shared file queue."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from apps.cli_errors import fail, one_line_errors
from apps.fraud.exceptions import FraudPipelineError
from apps.fraud.settings import STAGES, FraudSettings

app = typer.Typer(no_args_is_help=True, help="Fraud streaming pipeline: the four stages over a shared file queue.")
console = Console()
QUEUES = ("raw-transactions", "features-ready", "training-queue", "inference-results")


def _env_defaults(env_name: str) -> dict[str, str]:
    """LEASE_S and MAX_ATTEMPTS from the environment file, unless already set in the process env."""
    from environments import load_environment

    fp = load_environment(env_name).apps.fraud_pipeline
    return {"LEASE_S": str(fp.lease_s), "MAX_ATTEMPTS": str(fp.max_attempts)}


def _depth_table(root: Path, lease_s: float, max_attempts: int) -> Table:
    from apps.fraud.file_queue import STATES, FileQueue

    table = Table(title=f"fraud queues under {root}")
    table.add_column("queue")
    for state in STATES:
        table.add_column(state, justify="right")
    for name in QUEUES:
        depth = FileQueue(root, name, lease_s=lease_s, max_attempts=max_attempts).depth()
        table.add_row(name, *(str(depth[s]) for s in STATES))
    return table


@app.command("run")
def run(stage: str = typer.Argument(..., help=" | ".join(STAGES)),
        env: str = typer.Option("local", help="environment whose lease and attempts apply when unset")) -> None:
    """Run one stage in the foreground (what `python -m apps.fraud STAGE` does), settings from env vars."""
    from apps.fraud.runner import run_stage
    from apps.observability import configure_logging

    if stage not in STAGES:
        fail(f"stage: expected one of {', '.join(STAGES)}, got {stage!r}")
    with one_line_errors(FraudPipelineError, ValueError):
        settings = FraudSettings.from_env({**_env_defaults(env), **os.environ})
        configure_logging(f"fraud-{stage}", settings.log_level)
        run_stage(stage, settings)


@app.command("local")
def local(root: Path = typer.Option(Path("/tmp/fraud-pipeline"), help="the shared folder (the seed's /mnt/flashblade)"),
          workers: int = typer.Option(2, min=1, help="processes per consuming stage"),
          duration: float = typer.Option(30.0, min=1, help="seconds to run, then stop every stage"),
          rate: float = typer.Option(200.0, min=0, help="transactions per second data-gather emits"),
          min_training_items: int = typer.Option(300, min=10, help="rows model-build waits for before training"),
          env: str = typer.Option("local", help="environment whose lease and attempts apply")) -> None:
    """Start the four stages locally on one folder and show items flowing between the queues."""
    from apps.fraud.local import local_stages

    defaults = _env_defaults(env)
    child_env = {**defaults, **os.environ, "GATHER_RATE": str(rate), "MIN_TRAINING_ITEMS": str(min_training_items),
                 "TRAINING_SAMPLE_RATE": os.environ.get("TRAINING_SAMPLE_RATE", "0.3")}
    lease, attempts = float(child_env["LEASE_S"]), int(child_env["MAX_ATTEMPTS"])
    counts = {"data-gather": 1, "preprocessing": workers, "inference": workers, "model-build": 1}
    root.mkdir(parents=True, exist_ok=True)
    with local_stages(root, env=child_env, workers=counts, log_dir=root / "logs") as procs:  # type: ignore[arg-type]
        console.print(f"started {len(procs)} processes; logs in {root / 'logs'}")
        stop = threading.Event()
        deadline = time.monotonic() + duration
        with Live(_depth_table(root, lease, attempts), console=console, refresh_per_second=2) as live:
            while time.monotonic() < deadline and not stop.wait(1.0):
                live.update(_depth_table(root, lease, attempts))
                dead = [p for p in procs if p.process.poll() not in (None, 0)]
                if dead:
                    fail(f"stage {dead[0].stage} exited with {dead[0].process.returncode}; see {dead[0].log_path}")
    console.print(_depth_table(root, lease, attempts))
    from apps.fraud.file_queue import FileQueue
    from apps.fraud.records import decode_records

    scored = [r for _, p in FileQueue(root, "inference-results", lease_s=lease, max_attempts=attempts).pending_payloads()
              for r in decode_records(p)]
    versions = sorted({r["model_version"] for r in scored})  # type: ignore[index]
    flagged = sum(bool(r["is_fraud_predicted"]) for r in scored)  # type: ignore[index]
    console.print(f"scored {len(scored)} transactions ({flagged} flagged as fraud) with model versions {versions}; "
                  f"results in {root}/queue/inference-results/pending")


@app.command("status")
def status(root: Path = typer.Option(Path("/mnt/flashblade"), envvar="QUEUE_ROOT"),
           env: str = typer.Option("local")) -> None:
    """Queue depths per state, and the errors of dead-lettered items."""
    from apps.fraud.file_queue import FileQueue

    d = _env_defaults(env)
    console.print(_depth_table(root, float(d["LEASE_S"]), int(d["MAX_ATTEMPTS"])))
    for name in QUEUES:
        for note in FileQueue(root, name, lease_s=float(d["LEASE_S"]), max_attempts=int(d["MAX_ATTEMPTS"])).dead_letters():
            console.print(f"[red]dead-letter[/] {name} {note['item_id']} after {note['attempts']} attempt(s): {note['error']}")
