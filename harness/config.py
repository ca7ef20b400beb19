"""What the harness reads from the environment, parsed one way: the cache root and on/off flags.

    root = cache_root()                        # $MLOPS_CACHE_DIR, else ~/.cache/mlops-toolkit
    keep = env_flag("MLOPS_KEEP_CLUSTER")      # 1/true/yes/on or 0/false/no/off (any case), else an error

Read when asked, never at import: whoever sets MLOPS_CACHE_DIR before a command or a test session
starts moves every cache with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_ENV = "MLOPS_CACHE_DIR"
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """Where every cache and every piece of local state lives: built tools, base images, wheels,
    cluster kubeconfigs, local stacks. `$MLOPS_CACHE_DIR`, else `~/.cache/mlops-toolkit`."""
    environ = os.environ if environ is None else environ
    if value := environ.get(CACHE_ENV):
        return Path(value).expanduser()
    return Path.home() / ".cache" / "mlops-toolkit"


def parse_flag(value: str, *, name: str) -> bool:
    """An on/off setting as a person writes it; anything else is an error naming `name`."""
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{name}={value!r}: expected one of 1, true, yes, on (or 0, false, no, off)")


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """The flag in environment variable `name`; unset or empty is off."""
    environ = os.environ if environ is None else environ
    return parse_flag(environ.get(name, ""), name=name)


def flag(option: bool | None, *, env: str, environ: Mapping[str, str] | None = None) -> bool:
    """A command-line on/off option when it was given, else the environment variable `env`."""
    return option if option is not None else env_flag(env, environ)
