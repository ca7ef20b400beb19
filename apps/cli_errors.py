"""How every command of `mlops` ends on an error: one line `error: <message>` on stderr, exit 1.

It lives in `apps/`, the lowest room every command line may import (environments/ is the
pydantic model alone; argocd, infra and harness all import apps).

    with one_line_errors(EnvironmentFileError):  # error: <its message> on stderr, exit 1
        env = load_environment(name)
    if env.aws is None:
        fail(f"environment {env.name!r} has no aws block")
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape


def print_error(message: str) -> None:
    """The one line, on stderr; the message is text, never markup (`[main]` is printed as is)."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print the one line and end the command with `code`."""
    print_error(message)
    raise typer.Exit(code) from None  # the one line says it all: no chained traceback


class _OneLineErrors:
    # A class rather than @contextmanager: its __exit__ returns None, so type checkers know no
    # exception is swallowed (a `return` inside the block needs no unreachable fallback).
    def __init__(self, caught: tuple[type[BaseException], ...], code: int) -> None:
        self.caught, self.code = caught, code

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if isinstance(error, self.caught):
            fail(str(error), code=self.code)


def one_line_errors(*caught: type[BaseException], code: int = 1) -> AbstractContextManager[None]:
    """Any of `caught` raised inside ends the command as `fail(str(error))`; others pass through."""
    return _OneLineErrors(caught, code)
