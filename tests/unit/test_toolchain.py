"""The toolchain manifest, its wrapper modules, and how ensure_tool finds, reuses or fails to build."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.toolchain import ToolBuildError, UnknownToolError, ensure_tool, load_manifest
from harness.toolchain.build import cached_path, find_on_path
from harness.toolchain.errors import GoNotFoundError
from harness.toolchain.manifest import module_dir, required_version


CONTRACT_TOOLS = {"kwok", "kwokctl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kind", "minio"}


def test_manifest_pins_every_tool_the_other_rooms_use() -> None:
    assert CONTRACT_TOOLS <= set(load_manifest().tool_names())


@pytest.mark.parametrize("group_name", sorted(load_manifest().groups))
def test_each_wrapper_module_requires_the_pin_and_commits_its_checksum(group_name: str) -> None:
    group = load_manifest().groups[group_name]
    go_mod = module_dir(group_name) / "go.mod"
    assert required_version(go_mod, group.module) == group.version
    go_sum = (go_mod.parent / "go.sum").read_text()
    assert f"{group.module} {group.version} h1:" in go_sum
    for spec in group.tools.values():
        assert spec.package in go_mod.read_text(), f"{go_mod} lacks a tool directive for {spec.package}"
    for name, file in group.companions.items():
        assert f"{file.module} {group.version} h1:" in go_sum, f"{name}: {file.module} is not checksummed in {go_mod.parent}"


def test_pulumi_reports_its_pin_and_gets_its_dynamic_provider_launcher() -> None:
    """The Automation API refuses a CLI whose version it cannot read; dynamic providers need
    the launcher Pulumi expects beside its binary."""
    group = load_manifest().groups["pulumi"]
    assert f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={group.version}" in group.ldflags()
    assert "pulumi-resource-pulumi-python" in group.companions


def test_kubernetes_staging_modules_point_at_their_published_release() -> None:
    group = load_manifest().groups["kubernetes"]
    go_mod = (module_dir("kubernetes") / "go.mod").read_text()
    staging = f"v0.{group.version.split('.')[1]}.{group.version.split('.')[2]}"
    replaces = [line for line in go_mod.splitlines() if "=>" in line]
    assert len(replaces) >= 25
    assert all(line.strip().endswith(staging) for line in replaces), replaces


def test_unknown_tool_is_named() -> None:
    with pytest.raises(UnknownToolError, match="'helmfile'.*kubectl"):
        ensure_tool("helmfile")


def _script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty tool cache and a PATH holding only `nice` and whatever the test adds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    nice = shutil.which("nice")
    assert nice
    os.symlink(nice, bin_dir / "nice")
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_a_tool_on_path_at_the_pinned_version_is_reused(isolated: Path) -> None:
    version = load_manifest().groups["kind"].version
    fake = _script(isolated, "kind", f"echo 'kind {version} go1.26 linux/amd64'")
    assert ensure_tool("kind") == fake


def test_a_tool_on_path_at_another_version_is_not_trusted(isolated: Path) -> None:
    _script(isolated, "kind", "echo 'kind v0.33.01 go1.26 linux/amd64'")
    assert find_on_path("kind") is None


def test_a_cached_build_is_reused_before_path(isolated: Path) -> None:
    version = load_manifest().groups["kind"].version
    cached = cached_path("kind", version)
    cached.parent.mkdir(parents=True)
    _script(cached.parent, "kind", "exit 0")
    assert ensure_tool("kind") == cached


def test_a_failed_build_names_the_tool_and_keeps_the_log(isolated: Path) -> None:
    _script(isolated, "go", "echo 'verifying sigs.k8s.io/kind: checksum mismatch' >&2; exit 1")
    with pytest.raises(ToolBuildError, match=r"building kind v[0-9.]+ failed") as caught:
        ensure_tool("kind")
    assert "checksum mismatch" in str(caught.value)
    assert "checksum mismatch" in Path(caught.value.log_path).read_text()
    assert not cached_path("kind", caught.value.version).exists()


def test_missing_go_is_explained(isolated: Path) -> None:
    with pytest.raises(GoNotFoundError, match="cannot build kind: no `go` on PATH"):
        ensure_tool("kind")
