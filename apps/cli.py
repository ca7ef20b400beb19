"""Apps: train and serve the inference core, run the pipelines."""

from __future__ import annotations

import typer

from apps.api.cli import serve_command
from apps.batch.cli import app as batch_app
from apps.cleanup.cli import app as cleanup_app
from apps.fraud.cli import app as fraud_app
from apps.inference.cli import registry_app, train_command

app = typer.Typer(no_args_is_help=True, help="Apps: train and serve the inference core, run the pipelines.")
app.command("train")(train_command)
app.command("serve")(serve_command)
app.add_typer(registry_app, name="registry")
app.add_typer(batch_app, name="batch")
app.add_typer(fraud_app, name="fraud")
app.add_typer(cleanup_app, name="cleanup")
