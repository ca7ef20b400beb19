"""Infra tests: the real Pulumi program under Pulumi's mocks, one run per environment per session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

pytest.importorskip("pulumi_aws", reason="the infra extra (pulumi, pulumi-aws, pulumi-eks) is not installed")

from environments import Environment, load_environment  # noqa: E402
from environments.model import Aws  # noqa: E402
from infra.mocks import Run, run_program  # noqa: E402

CLOUD_ENVS = ["dev", "staging", "prod"]


def aws(env: Environment) -> Aws:
    """The `aws` section of a cloud environment (the ones these tests run on)."""
    assert env.aws is not None, f"{env.name} is not a cloud environment"
    return env.aws
_RUNS: dict[str, Run] = {}


def pytest_configure(config: pytest.Config) -> None:
    # pulumi-aws announces its deprecated resource classes on import; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_eks")


@pytest.fixture(autouse=True)
def _event_loop() -> None:
    """Pulumi's outputs need the thread's current event loop; an earlier test's asyncio.run()
    (unit tests run first in one session) leaves the thread without one."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture(params=CLOUD_ENVS)
def env(request: pytest.FixtureRequest) -> Environment:
    return load_environment(request.param)


@pytest.fixture
def run(env: Environment) -> Run:
    """The program's resources for `env` (run once per session: the program is deterministic)."""
    if env.name not in _RUNS:
        _RUNS[env.name] = run_program(env)
    return _RUNS[env.name]


@pytest.fixture
def run_with() -> Callable[..., Run]:
    """Run the program for an environment with overrides (not cached)."""

    def _run(name: str, overrides: dict) -> Run:
        return run_program(load_environment(name, overrides))

    return _run
