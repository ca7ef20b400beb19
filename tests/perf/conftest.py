"""Fixtures of the perf gate tests: a short-duration `local` environment and the API under test.

The API runs as its container through the containers harness (what CI uses), or, with
MLOPS_PERF_TARGET=process, as `python -m apps.api` on 127.0.0.1 for a quick loop without Docker.
Durations are shortened here; thresholds are the environment's, untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ContextManager

import pytest

from environments import load_environment
from environments.model import Environment
from harness.load.target import Faults, RunningApi

PERF_TARGET_ENV = "MLOPS_PERF_TARGET"
# Long enough for ramp, hold and ramp down at local's users/spawn_rate; short enough that the
# whole group stays well under three minutes.
TEST_DURATION_S = 8


StartApi = Callable[[Faults], ContextManager[RunningApi]]


@pytest.fixture(scope="session")
def perf_env() -> Environment:
    base = load_environment("local")
    short = {name: {"duration_s": TEST_DURATION_S} for name in base.perf.profiles}
    return load_environment("local", overrides={"perf": {"profiles": short}})


@pytest.fixture(scope="session")
def perf_target() -> str:
    kind = os.environ.get(PERF_TARGET_ENV, "container")
    if kind not in ("container", "process"):
        raise pytest.UsageError(f"{PERF_TARGET_ENV}={kind!r}: expected 'container' or 'process'")
    return kind


@pytest.fixture(scope="session")
def start_api(perf_env: Environment, perf_target: str, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> StartApi:
    """A factory: `with start_api(Faults(...)) as api:` runs one API with those faults."""
    if perf_target == "container":
        from harness.containers.stack import ContainerStack
        from harness.load.target import api_container

        # The containers harness's session fixtures: engine, images, network, S3 store, cleanup.
        stack = ContainerStack(
            images=request.getfixturevalue("mlops_images"),
            network=request.getfixturevalue("mlops_network"),
            s3=request.getfixturevalue("mlops_s3"),
            settings=request.getfixturevalue("mlops_containers_settings"),
        )
        uri = stack.registry(classifier=perf_env.api_model.classifier)

        @contextlib.contextmanager
        def in_container(faults: Faults) -> Iterator[RunningApi]:
            with api_container(stack, env=perf_env, registry_uri=uri, faults=faults) as running:
                assert running.url, "the API container published no URL"
                yield RunningApi(running.url, lambda: running.logs(80))

        return in_container

    from harness.load.target import api_process, local_registry

    work = tmp_path_factory.mktemp("perf-api")
    uri = local_registry(work / "models", env=perf_env)

    @contextlib.contextmanager
    def in_process(faults: Faults) -> Iterator[RunningApi]:
        log = work / f"api-{faults.latency_ms:g}ms-{faults.error_ratio:g}.log"
        with api_process(env=perf_env, registry_uri=uri, faults=faults, log_path=log) as url:
            yield RunningApi(url, lambda: log.read_text(errors="replace")[-4000:] if log.is_file() else "")

    return in_process


@pytest.fixture
def artifacts_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Per-test artifacts; kept under $MLOPS_PERF_ARTIFACTS/<test> when set."""
    keep = os.environ.get("MLOPS_PERF_ARTIFACTS")
    if keep:
        path = Path(keep) / request.node.name
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the perf group first: its measurements need a quiet machine, before other groups'
    session-scoped clusters and containers (alive until the session ends) compete for the cores."""
    perf = [item for item in items if item.get_closest_marker("perf")]
    if perf:
        rest = [item for item in items if not item.get_closest_marker("perf")]
        items[:] = perf + rest
