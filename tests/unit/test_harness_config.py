"""The harness reads its environment one way: one cache root, one way to say on or off."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from environments import load_environment
from harness.clusters.providers.base import state_dir
from harness.config import cache_root, flag, parse_flag
from harness.containers.settings import settings_from_env
from harness.stack import LocalSite
from harness.toolchain.build import cached_path, tools_dir

REPO = Path(__file__).resolve().parents[2]
pytest_plugins = ["pytester"]


def _every_cache(env_name: str = "local") -> dict[str, Path]:
    """Where each part of the harness keeps its files, as it would now."""
    return {
        "tools": tools_dir(),
        "a built tool": cached_path("kind", "v0.0.1"),
        "cluster kubeconfigs": state_dir(),
        "containers (base images, wheels, dockerd)": settings_from_env().cache_dir,
        "local stacks": LocalSite.of(load_environment(env_name)).state,
    }


def test_the_cache_root_follows_mlops_cache_dir_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # no longer a second root
    for what, path in _every_cache().items():
        assert path.is_relative_to(tmp_path / "cache"), f"{what}: {path}"


def test_without_mlops_cache_dir_everything_is_under_the_home_cache(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / ".cache" / "mlops-toolkit"
    for what, path in _every_cache().items():
        assert path.is_relative_to(tmp_path / ".cache" / "mlops-toolkit"), f"{what}: {path}"


@pytest.mark.parametrize("cache_dir", [None, "/srv/mlops-cache"])
def test_setup_sh_puts_checkov_under_the_same_root(cache_dir: str | None, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """harness/setup.sh resolves the root in shell: it must agree with cache_root()."""
    monkeypatch.setenv("HOME", str(tmp_path))
    script = (REPO / "harness" / "setup.sh").read_text()
    [expression] = set(re.findall(r"\$\{MLOPS_CACHE_DIR:-[^}]*\}", script))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **({"MLOPS_CACHE_DIR": cache_dir} if cache_dir else {})}
    shell = subprocess.run(["bash", "-c", f'printf %s "{expression}"'], env=env, capture_output=True, text=True,
                           check=True)
    assert Path(shell.stdout) == cache_root(env)


def test_the_readme_documents_the_one_variable_and_its_default() -> None:
    readme = (REPO / "README.md").read_text()
    assert "`MLOPS_CACHE_DIR`\n(default `~/.cache/mlops-toolkit`)" in readme


@pytest.mark.parametrize(("text", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True), (" on ", True),
    ("", False), ("0", False), ("false", False), ("No", False), ("OFF", False),
])
def test_a_flag_is_read_as_a_person_writes_it(text: str, expected: bool) -> None:
    assert parse_flag(text, name="MLOPS_X") is expected


def test_a_flag_that_is_neither_on_nor_off_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"MLOPS_KEEP_CLUSTER='maybe': expected one of 1, true, yes, on"):
        flag(None, env="MLOPS_KEEP_CLUSTER", environ={"MLOPS_KEEP_CLUSTER": "maybe"})


def test_the_command_line_wins_over_the_environment() -> None:
    assert flag(False, env="MLOPS_X", environ={"MLOPS_X": "1"}) is False
    assert flag(None, env="MLOPS_X", environ={"MLOPS_X": "1"}) is True


REPORT_KEEP = """
from harness.containers.plugin import keep_containers

def test_keep(cluster_settings, pytestconfig):
    (pytestconfig.rootpath / "keep.txt").write_text(f"{cluster_settings.keep} {keep_containers(pytestconfig)}")
"""


@pytest.mark.parametrize(("value", "expected"), [("TRUE", "True True"), ("yes", "True True"), ("0", "False False")])
def test_the_two_plugins_read_keep_flags_alike(value: str, expected: str, pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_KEEP_CLUSTER", value)
    monkeypatch.setenv("MLOPS_KEEP_CONTAINERS", value)
    pytester.makepyfile(REPORT_KEEP)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert (pytester.path / "keep.txt").read_text() == expected


def test_a_keep_flag_neither_on_nor_off_stops_the_run_with_its_name(pytester: pytest.Pytester,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_KEEP_CLUSTER", "maybe")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*MLOPS_KEEP_CLUSTER='maybe': expected one of 1, true, yes, on*"])
