"""Find or build pinned tools: the cache first, then PATH at the pinned version, else `go build`.

A group's tools build together in one `go build` (packages compile once) into a staging
directory, then each binary is renamed into `<cache>/<tool>-<version>/<tool>`: a binary at its
final path is complete. A file lock per group keeps concurrent test sessions from building twice.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from harness import config
from harness.toolchain.errors import GoNotFoundError, ToolBuildError
from harness.toolchain.manifest import ToolGroup, load_manifest, module_dir

PLAIN_PROGRESS_EVERY_S = 30.0


def tools_dir() -> Path:
    """Where built tools live: `tools/` under the harness's cache root (harness.config)."""
    return config.cache_root() / "tools"


def cached_path(name: str, version: str, root: Path | None = None) -> Path:
    return (root or tools_dir()) / f"{name}-{version}" / name


def _version_matches(output: str, version: str) -> bool:
    bare = re.escape(version.removeprefix("v"))
    return re.search(rf"(?<![0-9.])v?{bare}(?![0-9.])", output) is not None


def find_on_path(name: str) -> Path | None:
    """A `name` on PATH that reports the pinned version, or None."""
    _, group = load_manifest().group_of(name)
    spec = group.tools[name]
    found = shutil.which(name)
    if not found or spec.version_args is None:
        return None
    try:
        proc = subprocess.run([found, *spec.version_args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(found) if _version_matches(proc.stdout + proc.stderr, group.version) else None


def _go_output_name(package: str) -> str:
    """The file name `go build -o dir/` gives a main package (a /vN suffix names the element before)."""
    parts = package.split("/")
    return parts[-2] if re.fullmatch(r"v[0-9]+", parts[-1]) and len(parts) > 1 else parts[-1]


@contextmanager
def _group_lock(root: Path, group: str, version: str) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{group}-{version}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_group(group_name: str, group: ToolGroup, root: Path, console: Console) -> None:
    go = shutil.which("go")
    first_tool = next(iter(group.tools))
    if go is None:
        raise GoNotFoundError(first_tool)
    staging = root / f".build-{group_name}-{group.version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log_path = logs / f"{group_name}-{group.version}.log"
    # Checksums come from the committed go.sum (-mod=readonly); no cgo so binaries are static;
    # GOTOOLCHAIN=local so Go never downloads another toolchain behind the user's back.
    env = {**os.environ, "CGO_ENABLED": "1" if group.cgo else "0", "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"}
    packages = [spec.package for spec in group.tools.values()]
    tags = ["-tags", ",".join(group.tags)] if group.tags else []
    command = ["nice", "-n", "10", go, "build", "-v", "-trimpath", *tags, "-ldflags", group.ldflags(),
               "-o", f"{staging}/", *packages]
    tail: collections.deque[str] = collections.deque(maxlen=25)
    label = f"{group_name} {group.version} ({', '.join(group.tools)})"
    started = time.monotonic()
    console.print(f"building {label} with go (log: {log_path})", highlight=False)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"building {label}", total=None)
        compiled = 0
        reported = started
        with open(log_path, "w") as log, subprocess.Popen(
            command, cwd=module_dir(group_name), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip())
                compiled += 1
                progress.update(task, description=f"building {label}: {compiled} packages, {line.strip()[:60]}")
                if not console.is_terminal and time.monotonic() - reported >= PLAIN_PROGRESS_EVERY_S:
                    # A log or CI has no spinner: a plain line now and then shows the build is alive.
                    reported = time.monotonic()
                    console.print(f"building {group_name}: {compiled} packages, {reported - started:.0f}s", highlight=False)
            returncode = proc.wait()
    if returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ToolBuildError(
            tool=", ".join(group.tools), version=group.version, module_dir=str(module_dir(group_name)),
            returncode=returncode, log_path=str(log_path), tail="\n".join(tail),
        )
    for name, spec in group.tools.items():
        final = cached_path(name, group.version, root)
        final.parent.mkdir(parents=True, exist_ok=True)
        _install_companions(group_name, group, final.parent, env)  # before the binary: it marks completion
        os.replace(staging / _go_output_name(spec.package), final)
    shutil.rmtree(staging, ignore_errors=True)
    console.print(f"[green]built[/] {label} in {time.monotonic() - started:.0f}s", highlight=False)


def _install_companions(group_name: str, group: ToolGroup, target: Path, env: dict[str, str]) -> None:
    """Copy the group's companion files from their modules (checksummed by the group's go.sum)."""
    for name, file in group.companions.items():
        proc = subprocess.run(["go", "mod", "download", "-json", f"{file.module}@{group.version}"], cwd=module_dir(group_name),
                              env=env, capture_output=True, text=True, check=False)
        source = Path(json.loads(proc.stdout or "{}").get("Dir") or "/nonexistent") / file.path
        if proc.returncode != 0 or not source.is_file():
            raise ToolBuildError(tool=name, version=group.version, module_dir=str(module_dir(group_name)),
                                 returncode=proc.returncode, log_path="(go mod download)",
                                 tail=f"{file.module}@{group.version}: no {file.path}\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        (target / name).write_bytes(source.read_bytes())
        (target / name).chmod(0o755)  # the module cache is read-only, never executable


def ensure_tools(names: Iterable[str], *, console: Console | None = None) -> dict[str, Path]:
    """Paths of the pinned tools `names`, building what neither the cache nor PATH has."""
    manifest = load_manifest()
    console = console or Console(stderr=True)
    root = tools_dir()
    found: dict[str, Path] = {}
    missing: dict[str, list[str]] = {}
    for name in names:
        group_name, group = manifest.group_of(name)
        cached = cached_path(name, group.version, root)
        path = cached if cached.is_file() else find_on_path(name)
        if path is None:
            missing.setdefault(group_name, []).append(name)
        else:
            found[name] = path
    for group_name, tools in missing.items():
        group = manifest.groups[group_name]
        with _group_lock(root, group_name, group.version):
            # Another session may have built it while this one waited for the lock.
            if not all(cached_path(t, group.version, root).is_file() for t in group.tools):
                _build_group(group_name, group, root, console)
        for tool in tools:
            found[tool] = cached_path(tool, group.version, root)
    return found


def ensure_tool(name: str) -> Path:
    """The path of one pinned tool, built once and cached.

    >>> ensure_tool("kwokctl")  # doctest: +SKIP
    PosixPath('/root/.cache/mlops-toolkit/tools/kwokctl-v0.8.0/kwokctl')
    """
    return ensure_tools([name])[name]


def tool_status() -> list[tuple[str, str, str]]:
    """(tool, version, where) for every pinned tool, without building anything."""
    manifest = load_manifest()
    rows = []
    for group in manifest.groups.values():
        for name in group.tools:
            cached = cached_path(name, group.version)
            on_path = None if cached.is_file() else find_on_path(name)
            rows.append((name, group.version, str(cached) if cached.is_file() else str(on_path or "not built")))
    return rows
