"""Fraud streaming pipeline: the four stages over a shared file queue."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Fraud streaming pipeline: the four stages over a shared file queue.")
