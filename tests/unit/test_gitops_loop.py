"""The GitOps loop publishes the environment its caller gave it, not a fresh load of the same name."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from environments import EnvironmentFileError, load_environment
from harness.argocd_local.loop import GitOpsLoop



def loop_for(env_overrides: dict[str, Any]) -> GitOpsLoop:
    env = load_environment("local", env_overrides)
    unused = cast(Any, None)  # environment() needs neither a cluster nor the servers
    return GitOpsLoop(env=env, client=unused, git=unused, argocd=unused, repo_path=Path("/srv/repos/gitops.git"))


def test_the_callers_environment_is_published_with_the_loops_repository() -> None:
    loop = loop_for({"apps": {"inference_api": {"batch_limit": 77}}})
    env = loop.environment()
    assert env.apps.inference_api.batch_limit == 77  # the caller's change is kept
    assert env.gitops.repo_url == "/srv/repos/gitops.git"


def test_overrides_go_on_top_of_the_callers_changes() -> None:
    loop = loop_for({"apps": {"inference_api": {"batch_limit": 77}}})
    env = loop.environment({"apps": {"cleanup": {"enabled": False}}})
    assert (env.apps.inference_api.batch_limit, env.apps.cleanup.enabled) == (77, False)


def test_a_bad_override_names_its_field() -> None:
    with pytest.raises(EnvironmentFileError, match=r"apps\.inference_api\.batch_limit"):
        loop_for({}).environment({"apps": {"inference_api": {"batch_limit": 0}}})
