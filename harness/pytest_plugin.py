"""pytest plugin (entry point `mlops`): real containers and real clusters as fixtures.

Other repositories get the same fixtures by installing this package; options live in one
group, `mlops`, with one prefix, `--mlops-` (`--cluster` and `--keep-cluster` remain as aliases
of `--mlops-cluster` and `--mlops-keep-cluster`).

A SIGTERM (CI cancelling a job, `timeout`, `kill`) takes the Ctrl-C path for the run, so the
fixtures tear down what they started (containers, clusters) before the process ends; a handler
someone else installed first is left alone, and the previous one is back after the run.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

pytest_plugins = ["harness.containers.plugin", "harness.clusters.plugin"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # pytest tears fixtures down on KeyboardInterrupt, not on SIGTERM.
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[bool]:
    """SIGTERM raises KeyboardInterrupt while inside, when nobody else handles it (True then)."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield False
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield True
    finally:
        signal.signal(signal.SIGTERM, previous)


def pytest_configure(config: pytest.Config) -> None:
    run = contextlib.ExitStack()
    run.enter_context(sigterm_as_interrupt())
    config.add_cleanup(run.close)  # when the config goes out of use, after pytest_unconfigure
