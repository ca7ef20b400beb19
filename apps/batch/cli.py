"""Batch pipeline (PCC): daily, manual, backfill and long-running runs.

Settings come from the contract's environment variables (DATA_URI, MODEL_REGISTRY_URI, SOURCE,
DRY_RUN, PARTITION_DATE, ...); `python -m apps.batch` is this same group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from apps.batch.exceptions import BatchError
from apps.cli_errors import fail, one_line_errors

if TYPE_CHECKING:  # imported lazily at run time: the command line starts fast
    from apps.batch.settings import BatchSettings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Batch pipeline (PCC): daily, manual, backfill and long-running runs.")
console = Console()


def _settings(**overrides: object) -> BatchSettings:
    from apps.batch.settings import BatchSettings
    from apps.observability import configure_logging

    settings = BatchSettings.from_env(os.environ, **overrides)
    configure_logging("pcc-batch", settings.log_level)
    return settings


def _print(record: object) -> None:
    print(json.dumps(record.model_dump(mode="json"), indent=2))  # type: ignore[attr-defined]


@app.command("run")
def run(partition: str = typer.Option(None, help="YYYYMMDD; default PARTITION_DATE, else yesterday (UTC)")) -> None:
    """Run one partition (the daily CronJob and manual Jobs) and print its monitoring record."""
    from apps.batch.runner import run_partition

    with one_line_errors(BatchError, ValueError, RuntimeError):
        settings = _settings()
        _print(run_partition(settings, settings.partition(partition)))


@app.command("backfill")
def backfill(start: str = typer.Option(..., help="first partition, YYYYMMDD"),
             end: str = typer.Option(..., help="last partition, YYYYMMDD (inclusive)")) -> None:
    """Run a range of partitions; in an Indexed Job each pod runs the one at JOB_COMPLETION_INDEX."""
    from apps.batch.service import backfill as run_backfill

    with one_line_errors(BatchError, ValueError, RuntimeError):
        for record in run_backfill(_settings(), start, end, environ=os.environ):
            _print(record)


@app.command("serve")
def serve() -> None:
    """Long-running mode: metrics on METRICS_PORT; runs yesterday's partition every SERVE_INTERVAL_S."""
    from apps.batch.service import serve as run_serve

    with one_line_errors(BatchError, ValueError, RuntimeError):
        run_serve(_settings())


@app.command("train-sample")
def train_sample(registry: str = typer.Option(None, help="registry URI (default MODEL_REGISTRY_URI)"),
                 rows: int = typer.Option(2000, min=100), seed: int = typer.Option(0),
                 embedder: str = typer.Option("auto", envvar="EMBEDDER", help="auto | minilm | hashing"),
                 classifier: str = typer.Option("logistic_regression")) -> None:
    """Train a PCC model on synthetic labelled cases, publish and promote it."""
    from apps.batch.training import train_sample_model
    from apps.features import Featurizer
    from apps.observability import configure_logging

    uri = registry or os.environ.get("MODEL_REGISTRY_URI")
    if not uri:
        fail("no registry: pass --registry or set MODEL_REGISTRY_URI (file:// or s3://)")
    configure_logging("pcc-batch", os.environ.get("LOG_LEVEL", "INFO"))
    with one_line_errors(BatchError, ValueError, RuntimeError):
        version = train_sample_model(uri, featurizer=Featurizer.default(embedder), rows=rows, seed=seed,  # type: ignore[arg-type]
                                     classifier=classifier, endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
    console.print(f"promoted {version} in {uri}")


@app.command("demo")
def demo(workdir: Path = typer.Option(Path("/tmp/pcc-demo"), help="data and models go under this folder"),
         partition: str = typer.Option("20250115"), rows: int = typer.Option(1000, min=1),
         embedder: str = typer.Option("auto", help="auto | minilm | hashing")) -> None:
    """One command: a sample partition through every stage on a local folder; prints the monitoring record.

    Trains a sample model first when the folder's registry has none.
    """
    from apps.batch.runner import run_partition
    from apps.batch.settings import BatchSettings
    from apps.batch.training import train_sample_model
    from apps.features import Featurizer
    from apps.inference import ModelRegistry
    from apps.observability import configure_logging

    configure_logging("pcc-batch", os.environ.get("LOG_LEVEL", "WARNING"))
    workdir = workdir.resolve()
    with one_line_errors(BatchError, ValueError, RuntimeError):
        settings = BatchSettings(data_uri=f"file://{workdir}/data", model_registry_uri=f"file://{workdir}/models",
                                 source="sample", sample_rows=rows, embedder=embedder, metrics_port=0)  # type: ignore[arg-type]
        featurizer = Featurizer.default(settings.embedder)
        if ModelRegistry(settings.model_registry_uri).active_version() is None:
            console.print(f"training a sample model into {settings.model_registry_uri} ({featurizer.embedder.name})")
            train_sample_model(settings.model_registry_uri, featurizer=featurizer, rows=1500)
        record = run_partition(settings, settings.partition(partition), featurizer=lambda: featurizer)
    _print(record)
    console.print(f"output: {workdir}/data/pcc_inference_output/partition={partition}/")
