"""Shared fixtures of the manifests tests: environments, rendered trees, scratch git repos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from argocd.render import RenderedTree, render_environment
from environments import load_environment
from environments.model import Environment

ENVS = ["local", "dev", "staging", "prod"]


def env_with(name: str, **overrides: object) -> Environment:
    return load_environment(name, overrides or None)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def trees() -> dict[str, RenderedTree]:
    return {name: render_environment(load_environment(name)) for name in ENVS}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def commits(repo: Path, branch: str = "main") -> list[str]:
    return git(repo, "rev-list", branch).split()


def tree_files(repo: Path, branch: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", branch).split())
