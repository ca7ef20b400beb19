"""Infra: the Pulumi program, offline plan under Pulumi's mocks."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Infra: the Pulumi program, offline plan under Pulumi's mocks.")
