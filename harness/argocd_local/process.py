"""One local process for the length of a `with` block: its output in a log file, ready when a
probe says so, terminated (then killed) on the way out, whatever ends the block."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from apps.waiting import wait_for
from harness.argocd_local.errors import ProcessFailedError
from harness.processes import stop_process

STOP_TIMEOUT_S = 15
TAIL_LINES = 40


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    log: Path

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"


@contextlib.contextmanager
def running(
    name: str,
    command: list[str],
    *,
    log: Path,
    env: dict[str, str],
    ready: Callable[[], bool],
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = 120,
    hint: str = "",
) -> Iterator[Running]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C of the test run reaches us, not the child, first
        )
    handle = Running(name, proc.pid, log)
    try:
        if stdin is not None:
            assert proc.stdin is not None
            # Secrets (a password) go on stdin, never on a command line others can read.
            proc.stdin.write(stdin)
            proc.stdin.close()

        def probe() -> bool:
            if proc.poll() is not None:
                raise ProcessFailedError(name=name, detail=f"exited {proc.returncode} before it was ready", log_tail=handle.tail(), hint=hint)
            return ready()

        wait_for(probe, what=f"{name} ready", timeout=timeout, interval=0.3, hint=hint, describe=lambda: f"{name} log:\n{handle.tail()}")
        yield handle
    finally:
        stop_process(proc, timeout=STOP_TIMEOUT_S)
