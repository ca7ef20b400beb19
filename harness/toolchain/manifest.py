"""The pinned tool manifest (manifest.yaml), typed, and the wrapper module of each group."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.toolchain.errors import ManifestError

HERE = Path(__file__).parent
MANIFEST_PATH = HERE / "manifest.yaml"
MODULES_DIR = HERE / "modules"

ModuleVersion = Annotated[str, Field(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolSpec(Strict):
    package: str
    # Arguments that make the binary print its version; None: a binary on PATH is never trusted.
    version_args: list[str] | None = None


class ModuleFile(Strict):
    """A file of a Go module at the group's version (for instance a launcher script a tool
    expects beside its binary)."""

    module: str
    path: str


class ToolGroup(Strict):
    module: str
    version: ModuleVersion
    version_packages: list[str] = []
    # Fully qualified string variables the linker sets to the pinned version (`-X pkg.Var=v...`).
    version_variables: list[str] = []
    # cgo on (for a tool that links a C library, such as runc's libseccomp); static Go otherwise.
    cgo: bool = False
    tags: list[str] = []
    tools: dict[str, ToolSpec] = Field(min_length=1)
    # Files installed beside the group's binaries, by name.
    companions: dict[str, ModuleFile] = {}

    def ldflags(self) -> str:
        flags = ["-s", "-w", *(f"-X {var}={self.version}" for var in self.version_variables)]
        match = re.match(r"^v([0-9]+)\.([0-9]+)\.", self.version)
        for pkg in self.version_packages:
            assert match  # version_packages only make sense with a semver pin
            flags += [
                f"-X {pkg}.gitVersion={self.version}",
                f"-X {pkg}.gitMajor={match.group(1)}",
                f"-X {pkg}.gitMinor={match.group(2)}",
                f"-X {pkg}.gitTreeState=clean",
                # A fixed date keeps builds reproducible.
                f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
            ]
        return " ".join(flags)


class Manifest(Strict):
    groups: dict[str, ToolGroup] = Field(min_length=1)

    def tool_names(self) -> list[str]:
        return [t for g in self.groups.values() for t in g.tools]

    def group_of(self, tool: str) -> tuple[str, ToolGroup]:
        for name, group in self.groups.items():
            if tool in group.tools:
                return name, group
        from harness.toolchain.errors import UnknownToolError

        raise UnknownToolError(tool, self.tool_names())


def module_dir(group: str) -> Path:
    return MODULES_DIR / group


def required_version(go_mod: Path, module: str) -> str | None:
    """The version `go_mod` requires of `module` (single-line or block `require`)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.M)
    found = pattern.search(go_mod.read_text())
    return found.group(1) if found else None


@functools.cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    try:
        manifest = Manifest.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise ManifestError(f"{path}: {e}") from e
    for name, group in manifest.groups.items():
        go_mod = module_dir(name) / "go.mod"
        if not (go_mod.is_file() and (go_mod.parent / "go.sum").is_file()):
            raise ManifestError(f"{path}: group {name!r} needs {go_mod} and its go.sum (run `go mod tidy` there)")
        pinned = required_version(go_mod, group.module)
        if pinned != group.version:
            raise ManifestError(
                f"{path}: group {name!r} pins {group.module} {group.version} but {go_mod} requires {pinned}; "
                "edit both together, then run `go mod tidy` in that directory"
            )
    return manifest
