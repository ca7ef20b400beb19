"""A cluster for the length of a `with` block: created (or reused), deleted on the way out
only when this block created it and `keep` is off, whatever ends the block (failure, Ctrl-C).

    with cluster_session(KwokProvider(), "mlops-local", env=load_environment("local")) as info:
        client = client_for(info.kubeconfig)

Clusters created and not kept are recorded with the creating process id, so one left by a
killed run (SIGKILL skips every cleanup) is deleted by the next run before anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import psutil

from environments.model import Environment
from harness.clusters.providers.base import ClusterInfo, ClusterProvider, state_dir


def _ledger() -> Path:
    return state_dir() / "owned.json"


def _read() -> dict[str, int]:
    try:
        return dict(json.loads(_ledger().read_text()))
    except (OSError, ValueError):
        return {}


def _write(entries: dict[str, int]) -> None:
    tmp = _ledger().with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
    os.replace(tmp, _ledger())


def reap_orphans(provider: ClusterProvider) -> list[str]:
    """Delete this provider's clusters recorded by runs that died without cleaning up."""
    entries = _read()
    reaped = []
    for key, pid in sorted(entries.items()):
        name = key.split("/", 1)[1]
        if key.startswith(f"{provider.name}/") and not psutil.pid_exists(pid):
            provider.delete(name)
            entries.pop(key)
            reaped.append(name)
    _write(entries)
    return reaped


@contextlib.contextmanager
def cluster_session(provider: ClusterProvider, name: str, *, env: Environment, keep: bool = False) -> Iterator[ClusterInfo]:
    key = f"{provider.name}/{name}"
    reap_orphans(provider)
    record = not keep and not provider.exists(name)
    if record:
        # Recorded before creation: a run killed mid-create still leaves a trace to reap.
        _write({**_read(), key: os.getpid()})
    info: ClusterInfo | None = None
    try:
        info = provider.create(name, env=env)
        yield info
    finally:
        if record and not keep:
            provider.delete(name)
            entries = _read()
            entries.pop(key, None)
            _write(entries)
