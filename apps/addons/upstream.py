"""Files of a pinned upstream Go module (CRD schemas and manifests), fetched with
`go mod download` into the Go module cache once, never copied into this repository."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml


class UpstreamError(RuntimeError):
    """A pinned module that cannot be fetched; the message names it and why."""


@functools.cache
def module_dir(module: str, version: str) -> Path:
    """``go mod download`` a module into the Go module cache (once) and return its directory."""
    # Debian/official installs put Go in /usr/local/go; PATH may not name it (CI, cron).
    go = shutil.which("go") or next((str(p) for p in [Path("/usr/local/go/bin/go")] if p.is_file()), None)
    if go is None:
        raise UpstreamError(f"`go` is not on PATH; it fetches {module}@{version} from the Go module proxy. "
                            "Install Go (or put it on PATH) and retry")
    with tempfile.TemporaryDirectory(prefix="mlops-gomod-") as outside_any_module:
        result = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], capture_output=True,
                                text=True, timeout=900, check=False, cwd=outside_any_module)
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {}
    if result.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UpstreamError(f"go mod download {module}@{version} failed: {detail}")
    return Path(info["Dir"])


class _UpstreamLoader(yaml.SafeLoader):
    """YAML as upstream generators write it: a lone `=` (an enum value in some CRDs) is a
    string, not YAML 1.1's unsupported `value` tag."""


def _value_as_string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_UpstreamLoader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


def load_all(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=_UpstreamLoader) if doc is not None]
