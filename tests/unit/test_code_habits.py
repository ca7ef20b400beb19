"""Lint and types, on the whole tree, from the test command: `.venv/bin/pytest` fails when either slips.

ruff and mypy run from the same venv as pytest (pinned in the `dev` extra; `harness/setup.sh`
installs them) with their settings in pyproject.toml. mypy keeps its cache in `.mypy_cache`
(git-ignored), so a rerun checks only what changed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(tool) is None:
        pytest.fail(f"{tool} is not installed in {sys.prefix}: it is pinned in the dev extra; run ./harness/setup.sh")
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_ruff_finds_nothing_on_the_whole_tree() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, f"ruff check . failed:\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing_on_the_whole_tree() -> None:
    # The files and the per-room strictness come from [tool.mypy] in pyproject.toml.
    result = _run("mypy")
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
