"""GitOps: render, validate, diff and publish an environment's tree."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="GitOps: render, validate, diff and publish an environment's tree.")
