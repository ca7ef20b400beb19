"""Images and containers: Docker engine, base image, app images."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Images and containers: Docker engine, base image, app images.")
