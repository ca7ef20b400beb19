"""`mlops apps train` and `mlops apps registry ...`: train, publish, promote and roll back models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from apps.cli_errors import fail, one_line_errors
from apps.inference.dataset import DEPLOY_SAMPLES, Dataset, synthetic_dataset
from apps.inference.errors import InferenceError
from apps.storage import StorageError

if TYPE_CHECKING:  # imported lazily at run time
    from apps.inference.registry import ModelRegistry

console = Console()
registry_app = typer.Typer(no_args_is_help=True, help="Model registry: list, show, promote, roll back versions.")

RegistryOpt = typer.Option(None, "--registry", help="Registry URI (file://... or s3://...); default MODEL_REGISTRY_URI.")
EndpointOpt = typer.Option(None, "--endpoint-url", help="S3-compatible endpoint; default S3_ENDPOINT_URL.")


def _registry(uri: str | None, endpoint_url: str | None) -> ModelRegistry:
    from apps.inference.registry import ModelRegistry

    uri = uri or os.environ.get("MODEL_REGISTRY_URI")
    if not uri:
        fail("no registry: pass --registry file:///path or s3://bucket/prefix, or set MODEL_REGISTRY_URI")
    return ModelRegistry(uri, endpoint_url=endpoint_url or os.environ.get("S3_ENDPOINT_URL") or None)


def load_table(path: Path, *, label: str) -> Dataset:
    """A CSV or Parquet file: every column but `label` is a feature, in file order."""
    import numpy as np
    import pyarrow.csv
    import pyarrow.parquet

    table = pyarrow.parquet.read_table(path) if path.suffix == ".parquet" else pyarrow.csv.read_csv(path)
    if label not in table.column_names:
        raise InferenceError(f"{path}: expected a label column {label!r}, found columns {table.column_names}")
    features = [c for c in table.column_names if c != label]
    X = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in features])
    return Dataset.from_arrays(X, table.column(label).to_numpy(zero_copy_only=False), features=features)


def train_command(
    registry: str | None = RegistryOpt,
    endpoint_url: str | None = EndpointOpt,
    env: str = typer.Option("local", "--env", help="Environment whose inference API's model family gives the default classifier."),
    classifier: str | None = typer.Option(None, help="random_forest | logistic_regression; default from --env."),
    data: Path | None = typer.Option(None, help="CSV or Parquet training data; default a synthetic dataset."),
    label: str = typer.Option("label", help="The label column of --data."),
    samples: int = typer.Option(DEPLOY_SAMPLES, help="Rows of the synthetic dataset (a deployable forest)."),
    features: int = typer.Option(20, help="Features of the synthetic dataset (the inference seed sends 20)."),
    seed: int = typer.Option(0, help="Seed of the split, the estimator and the synthetic data."),
    promote: bool = typer.Option(False, "--promote", help="Make the new version the active one."),
) -> None:
    """Train a classifier, publish it as a new registry version, optionally promote it."""
    from apps.inference.training import train
    from environments import load_environment

    with one_line_errors(InferenceError, StorageError, ValueError, OSError):
        name = classifier or load_environment(env).api_model.classifier
        dataset = load_table(data, label=label) if data else synthetic_dataset(n_samples=samples, n_features=features, seed=seed)
        reg = _registry(registry, endpoint_url)
        with console.status(f"training {name} on {len(dataset)} rows x {dataset.schema.n_features} features"):
            trained = train(dataset, classifier=name, seed=seed)
            version = reg.publish(trained)
        if promote:
            reg.promote(version)
    m = trained.metrics
    console.print(f"published {version} ({name}): accuracy {m.accuracy:.3f}, ROC AUC {m.roc_auc:.3f}, F1 {m.f1:.3f}"
                  + (" [green]active[/green]" if promote else ""))
    typer.echo(version)


@registry_app.command("list")
def list_versions(registry: str | None = RegistryOpt, endpoint_url: str | None = EndpointOpt) -> None:
    """Every complete version, oldest first, the active one marked."""
    reg = _registry(registry, endpoint_url)
    with one_line_errors(InferenceError, StorageError):
        active, versions = reg.active_version(), reg.versions()
    table = Table("version", "active")
    for v in versions:
        table.add_row(v, "*" if v == active else "")
    console.print(table)


@registry_app.command("show")
def show(version: str | None = typer.Argument(None, help="Default: the active version."),
         registry: str | None = RegistryOpt, endpoint_url: str | None = EndpointOpt) -> None:
    """Verify a version and print its metadata as JSON."""
    with one_line_errors(InferenceError, StorageError):
        artifact = _registry(registry, endpoint_url).load(version)
    typer.echo(artifact.metadata.model_dump_json(indent=2))


@registry_app.command("promote")
def promote_command(version: str, registry: str | None = RegistryOpt, endpoint_url: str | None = EndpointOpt) -> None:
    """Verify VERSION and make it active (running APIs pick it up within RELOAD_INTERVAL_S)."""
    with one_line_errors(InferenceError, StorageError):
        _registry(registry, endpoint_url).promote(version)
    console.print(f"active: {version}")


@registry_app.command("rollback")
def rollback_command(registry: str | None = RegistryOpt, endpoint_url: str | None = EndpointOpt) -> None:
    """Re-activate the previously active version."""
    with one_line_errors(InferenceError, StorageError):
        version = _registry(registry, endpoint_url).rollback()
    console.print(f"active: {version}")
