"""Cleanup job: retention of run data."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Cleanup job: retention of run data.")
