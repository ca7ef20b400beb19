"""What the harness reads from the environment, parsed one way: the cache root.

    root = cache_root()                        # $MLOPS_CACHE_DIR, else ~/.cache/mlops-toolkit

Read when asked, never at import: whoever sets MLOPS_CACHE_DIR before a command or a test session
starts moves every cache with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_ENV = "MLOPS_CACHE_DIR"


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """Where every cache and every piece of local state lives: built tools, base images, wheels,
    cluster kubeconfigs, local stacks. `$MLOPS_CACHE_DIR`, else `~/.cache/mlops-toolkit`."""
    environ = os.environ if environ is None else environ
    if value := environ.get(CACHE_ENV):
        return Path(value).expanduser()
    return Path.home() / ".cache" / "mlops-toolkit"
