"""Toolchain: upstream binaries built from their Go modules."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Toolchain: upstream binaries built from their Go modules.")
