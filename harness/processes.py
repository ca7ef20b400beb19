"""Stopping a child process the harness started: politely, then for sure."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(proc: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM, wait up to `timeout` s for a clean exit, then SIGKILL; a no-op if it already exited."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        # A process SIGKILL cannot end within 10 s is stuck in the kernel: say so instead of hanging.
        proc.wait(timeout=10)
