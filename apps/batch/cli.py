"""Batch pipeline (PCC): daily, manual, backfill and long-running runs."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Batch pipeline (PCC): daily, manual, backfill and long-running runs.")
