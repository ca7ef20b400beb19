"""Shared fixtures of the manifests tests: environments, rendered trees, scratch git repos."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from apps.cloud import CloudMetadata
from infra.mocks import pushed_digests
from argocd.render import RenderedTree, render_environment
from environments import load_environment
from environments.model import Environment

ENVS = ["local", "dev", "staging", "prod"]
# What a cloud stack's `gitops_metadata` output holds (the ids the chart add-ons name).
# What a stack hands its tree: its ids, its ECR prefix and the digests `mlops images push` reported.
SAMPLE_CLOUD = CloudMetadata(vpc_id="vpc-0a1b2c3d4e5f60718", file_system_id="fs-0a1b2c3d4e5f60718",
                             registry="123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/ml-platform",
                             image_digests=pushed_digests())


def render(env: Environment, **kwargs: object) -> RenderedTree:
    """The tree as a stack publishes it: cloud environments with a stack's metadata."""
    if env.aws is not None:
        kwargs.setdefault("cloud", SAMPLE_CLOUD)
    return render_environment(env, **kwargs)  # type: ignore[arg-type]


def env_with(name: str, **overrides: object) -> Environment:
    return load_environment(name, overrides or None)


@pytest.fixture(scope="session")
def trees() -> dict[str, RenderedTree]:
    return {name: render(load_environment(name)) for name in ENVS}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def commits(repo: Path, branch: str = "main") -> list[str]:
    return git(repo, "rev-list", branch).split()


def tree_files(repo: Path, branch: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", branch).split())
