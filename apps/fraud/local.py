"""Run the four stages as local processes on one folder: the seed's pods, on a laptop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from apps.fraud.settings import STAGES, StageName


@dataclass
class StageProcess:
    stage: StageName
    index: int
    process: subprocess.Popen
    log_path: Path


@contextmanager
def local_stages(root: Path, *, env: Mapping[str, str], workers: Mapping[StageName, int],
                 log_dir: Path) -> Iterator[list[StageProcess]]:
    """Start `workers[stage]` processes per stage; on exit SIGTERM them all and wait (then SIGKILL)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started: list[StageProcess] = []
    child_env = {**env, "QUEUE_ROOT": str(root), "METRICS_PORT": env.get("METRICS_PORT", "0")}
    try:
        for stage in STAGES:
            for i in range(workers.get(stage, 0)):
                log_path = log_dir / f"{stage}-{i}.log"
                with open(log_path, "wb") as log_file:
                    proc = subprocess.Popen([sys.executable, "-m", "apps.fraud", stage], env=child_env,
                                            stdout=log_file, stderr=subprocess.STDOUT, cwd=os.getcwd())
                started.append(StageProcess(stage, i, proc, log_path))
        yield started
    finally:
        for sp in started:
            if sp.process.poll() is None:
                sp.process.send_signal(signal.SIGTERM)
        for sp in started:
            try:
                sp.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                sp.process.kill()
                sp.process.wait()
