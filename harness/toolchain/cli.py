"""Toolchain: upstream binaries built from their Go modules."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from apps.cli_errors import one_line_errors
from harness.toolchain.build import ensure_tools, tool_status, tools_dir
from harness.toolchain.errors import ToolchainError
from harness.toolchain.manifest import load_manifest

app = typer.Typer(no_args_is_help=True, help="Toolchain: upstream binaries built from their Go modules.")
console = Console()


@app.command("list")
def list_tools() -> None:
    """Every pinned tool, its version and where it is (cache, PATH, or not built)."""
    with one_line_errors(ToolchainError):
        rows = tool_status()
    table = Table("tool", "version", "path", title=f"cache: {tools_dir()}")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@app.command("build")
def build(names: list[str] = typer.Argument(None, help="Tools to build; all pinned tools when omitted.")) -> None:
    """Build (once) and cache the named tools; prints each path."""
    with one_line_errors(ToolchainError):
        paths = ensure_tools(names or load_manifest().tool_names(), console=console)
    for name, path in paths.items():
        console.print(f"{name}\t{path}", highlight=False)


@app.command("path")
def path(name: str) -> None:
    """The path of one tool (built if needed), alone on stdout for scripts: `$(mlops harness toolchain path kubectl)`."""
    with one_line_errors(ToolchainError):
        found = ensure_tools([name], console=Console(stderr=True))[name]
    print(found)
