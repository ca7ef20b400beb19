"""Clusters: create, reuse and delete kwok, kind or existing clusters."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Clusters: create, reuse and delete kwok, kind or existing clusters.")
