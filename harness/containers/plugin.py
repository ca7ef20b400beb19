"""Container fixtures: a Docker engine, the images, the S3-compatible store, and the app containers.

Loaded by the `mlops` pytest11 entry point (harness/pytest_plugin.py), so any repository that
installs the toolkit gets these fixtures without a conftest. Options (group "mlops"):

- `--mlops-keep-containers` (env MLOPS_KEEP_CONTAINERS=1): keep the store, its network and a
  dockerd this run started, and reuse them next run (`mlops harness images clean` removes them).
- `--mlops-base-image=auto|local|IMAGE` (env MLOPS_BASE_IMAGE; default auto: python:3.11-slim
  when a registry gives it, else the local debootstrap base).

Fixtures (session unless noted): `mlops_docker` (an answering engine), `mlops_base_image`,
`mlops_minio_image`, `mlops_api_image`, `mlops_pipeline_image`, `mlops_images` (all of them),
`mlops_network`, `mlops_s3` (endpoint, keys, `create_bucket`, `container_env()`), and per test
`mlops_bucket`, `mlops_s3_host_env`, `mlops_inference_api` (a factory: `start(**env)` -> `.url`)
and `mlops_pipeline` (`run(...)`, `start(...)` with `.kill()`/`.restart()`, `volume()`). Other
repositories use the engine, base, store and network fixtures with their own images through
`harness.containers.runners`.

testcontainers' reaper image cannot be pulled here, so it is disabled through testcontainers'
own configuration object for the run (and set back after it), and cleanup is ours: every object
carries this session's labels and is removed at the end of the session (also after a failure or
Ctrl-C / SIGTERM, see harness/pytest_plugin.py), and objects of a session whose process died are
removed at the start of the next. A failing test gets the logs
of the containers it started in its report.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from testcontainers.core.network import Network

from harness.config import flag
from harness.containers.base import UPSTREAM_BASE, ensure_base_image
from harness.containers.build import REPO_ROOT, ImageSet, ensure_app_images, ensure_minio_image
from harness.containers.cleanup import reaper_disabled, remove_session, remove_stale
from harness.containers.engine import Engine, start_engine, stop_engine
from harness.containers.errors import EngineUnavailableError
from harness.containers.images import APP_IMAGES, BuiltImage, ImageSpec
from harness.containers.runners import Running, app_volume, inference_api, run_to_completion, worker
from harness.containers.services import S3Service, s3_service, session_network
from harness.containers.settings import ContainersSettings, default_settings
from harness.containers.wheelhouse import ensure_wheelhouse

_RUNNING = pytest.StashKey[list[Running]]()
_KEEP = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlops", "mlops toolkit: real containers and clusters")
    group.addoption("--mlops-keep-containers", action="store_true", default=None,
                    help="keep the S3 store, its network and a dockerd this run started, for reuse next run "
                         "(env MLOPS_KEEP_CONTAINERS=1)")
    group.addoption("--mlops-base-image", default=None,
                    help="auto (python:3.11-slim if a registry gives it, else a local debootstrap base), local, "
                         "or an image reference (env MLOPS_BASE_IMAGE; default auto)")


def keep_containers(config: pytest.Config) -> bool:
    """--mlops-keep-containers, else $MLOPS_KEEP_CONTAINERS (read once, in pytest_configure)."""
    return config.stash[_KEEP]


def _base_choice(config: pytest.Config) -> str:
    return config.getoption("--mlops-base-image") or os.environ.get("MLOPS_BASE_IMAGE") or "auto"


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[_KEEP] = flag(config.getoption("--mlops-keep-containers"), env="MLOPS_KEEP_CONTAINERS")
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    run = contextlib.ExitStack()
    run.enter_context(reaper_disabled())
    config.add_cleanup(run.close)  # set back when the config goes out of use


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for run in item.stash.get(_RUNNING, []):
            report.sections.append((f"container {run.name} logs", run.logs(200)))
    return report


# Fixtures whose first use needs the engine; and those that also need the base, wheels or MinIO.
_ENGINE_FIXTURES = {"mlops_docker", "mlops_base_image", "mlops_minio_image", "mlops_images", "mlops_api_image",
                    "mlops_pipeline_image", "mlops_network", "mlops_s3", "mlops_s3_host_env", "mlops_bucket",
                    "mlops_inference_api", "mlops_pipeline"}
_APP_FIXTURES = {"mlops_images", "mlops_api_image", "mlops_pipeline_image", "mlops_inference_api", "mlops_pipeline"}
_MINIO_FIXTURES = {"mlops_minio_image", "mlops_images", "mlops_s3", "mlops_s3_host_env", "mlops_bucket",
                   "mlops_inference_api", "mlops_pipeline"}
_ENGINE = pytest.StashKey[Engine | None]()
_PREPARE_FAILED = pytest.StashKey[tuple[bool, str]]()  # (skip?, reason)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the engine and do the slow one-time work (debootstrap, wheels, the MinIO binary) before
    the first test that needs them, outside any test's timeout."""
    config = session.config
    if config.option.collectonly:
        return
    used: set[str] = set()
    for item in session.items:
        used.update(_ENGINE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    if not used:
        return
    settings = default_settings()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[mlops containers] {line}")

    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        try:
            engine = start_engine(settings)
            config.stash[_ENGINE] = engine
            say(f"Docker {engine.version} ({'started dockerd' if engine.started else 'already running'})")
            base = ensure_base_image(engine.client, settings=settings, choice=_base_choice(config), log=say)
            if used & _APP_FIXTURES and base != UPSTREAM_BASE:
                ensure_wheelhouse(REPO_ROOT, settings=settings, log=say)
            if used & _MINIO_FIXTURES:
                from harness.toolchain import ensure_tool

                say("toolchain: minio")
                ensure_tool("minio")
        except EngineUnavailableError as e:
            config.stash[_PREPARE_FAILED] = (True, f"no Docker engine here: {e}")
        except Exception as e:  # noqa: BLE001 - reported by the fixtures, so the tests fail with it
            config.stash[_PREPARE_FAILED] = (False, f"{type(e).__name__}: {e}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    # The fixture stops the engine; this covers a run whose fixtures never ran (all skipped, or
    # interrupted before the first one).
    engine = session.config.stash.get(_ENGINE, None)
    if engine is not None and not keep_containers(session.config):
        remove_session(engine.client, default_settings())
        stop_engine(engine, session_id=default_settings().session_id)


def _track(request: pytest.FixtureRequest, run: Running) -> Running:
    request.node.stash.setdefault(_RUNNING, []).append(run)
    return run


@pytest.fixture(scope="session")
def mlops_containers_settings() -> ContainersSettings:
    """Cache folder, niceness and this session's identity (its labels)."""
    return default_settings()


@pytest.fixture(scope="session")
def mlops_docker(request: pytest.FixtureRequest, mlops_containers_settings: ContainersSettings) -> Iterator[Engine]:
    """An answering Docker engine (started if needed); this session's objects are removed after it."""
    settings = mlops_containers_settings
    config = request.config
    if _PREPARE_FAILED in config.stash:
        skip, reason = config.stash[_PREPARE_FAILED]
        if skip:
            pytest.skip(reason)
        pytest.fail(f"preparing the containers harness failed: {reason}")
    engine = config.stash.get(_ENGINE, None)
    if engine is None:
        try:
            engine = start_engine(settings)
        except EngineUnavailableError as e:
            pytest.skip(f"no Docker engine here: {e}")
    keep = keep_containers(config)
    try:
        remove_stale(engine.client, settings)
        yield engine
    finally:
        remove_session(engine.client, settings)
        if not keep:
            stop_engine(engine, session_id=settings.session_id)
        config.stash[_ENGINE] = None  # sessionfinish then has nothing to do


@pytest.fixture(scope="session")
def mlops_base_image(request: pytest.FixtureRequest, mlops_docker: Engine,
                     mlops_containers_settings: ContainersSettings) -> str:
    """BASE_IMAGE for every build: python:3.11-slim when a registry gives it, else the local base."""
    return ensure_base_image(mlops_docker.client, settings=mlops_containers_settings,
                             choice=_base_choice(request.config))


@pytest.fixture(scope="session")
def mlops_minio_image(mlops_docker: Engine, mlops_base_image: str,
                      mlops_containers_settings: ContainersSettings) -> BuiltImage:
    """The MinIO image (also under testcontainers' MinIO module's default tag: it never pulls)."""
    return ensure_minio_image(mlops_docker.client, settings=mlops_containers_settings, base_image=mlops_base_image)


@pytest.fixture(scope="session")
def mlops_api_image(mlops_docker: Engine, mlops_base_image: str,
                    mlops_containers_settings: ContainersSettings) -> BuiltImage:
    """ml-inference-api from apps/api/Dockerfile, built only when its inputs changed."""
    [image] = ensure_app_images(mlops_docker.client, settings=mlops_containers_settings, base_image=mlops_base_image,
                                specs=[_spec("ml-inference-api")])
    return image


@pytest.fixture(scope="session")
def mlops_pipeline_image(mlops_docker: Engine, mlops_base_image: str,
                         mlops_containers_settings: ContainersSettings) -> BuiltImage:
    """ml-pipeline from apps/Dockerfile, built only when its inputs changed."""
    [image] = ensure_app_images(mlops_docker.client, settings=mlops_containers_settings, base_image=mlops_base_image,
                                specs=[_spec("ml-pipeline")])
    return image


@pytest.fixture(scope="session")
def mlops_images(mlops_base_image: str, mlops_api_image: BuiltImage, mlops_pipeline_image: BuiltImage,
                 mlops_minio_image: BuiltImage) -> ImageSet:
    """Every image of the toolkit: ml-inference-api, ml-pipeline and MinIO."""
    return ImageSet(base=mlops_base_image, images=(mlops_api_image, mlops_pipeline_image, mlops_minio_image))


def _spec(name: str) -> ImageSpec:
    return next(spec for spec in APP_IMAGES if spec.name == name)


@pytest.fixture(scope="session")
def mlops_network(request: pytest.FixtureRequest, mlops_docker: Engine,
                  mlops_containers_settings: ContainersSettings) -> Iterator[Network]:
    """The session's Docker network: app containers find the store as `minio`."""
    with session_network(mlops_containers_settings, keep=keep_containers(request.config)) as network:
        yield network


@pytest.fixture(scope="session")
def mlops_s3(request: pytest.FixtureRequest, mlops_minio_image: BuiltImage, mlops_network: Network,
             mlops_containers_settings: ContainersSettings) -> Iterator[S3Service]:
    """The S3-compatible store (MinIO via testcontainers' own module), on the session network."""
    with s3_service(image=mlops_minio_image.tag, settings=mlops_containers_settings, network=mlops_network,
                    keep=keep_containers(request.config)) as s3:
        yield s3


@pytest.fixture
def mlops_s3_host_env(mlops_s3: S3Service, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The store's endpoint and keys in this test's environment (undone after it), for host-side boto3."""
    env = mlops_s3.host_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def mlops_bucket(request: pytest.FixtureRequest, mlops_s3: S3Service,
                 mlops_containers_settings: ContainersSettings) -> str:
    """A fresh bucket for this test; returns its s3:// URI."""
    name = f"t-{mlops_containers_settings.session_id}-{abs(hash(request.node.nodeid)) % 10**8}"
    return mlops_s3.create_bucket(name)


@pytest.fixture
def mlops_inference_api(request: pytest.FixtureRequest, mlops_api_image: BuiltImage, mlops_network: Network,
                        mlops_s3: S3Service, mlops_containers_settings: ContainersSettings
                        ) -> Iterator[Callable[..., Running]]:
    """Factory: `start(MODEL_REGISTRY_URI=..., **env)` runs the API image, ready on /readyz; `.url`."""
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> Running:
            run = stack.enter_context(inference_api(
                image=mlops_api_image.tag, settings=mlops_containers_settings,
                network=mlops_network, env={**mlops_s3.container_env(), **env}))
            return _track(request, run)

        yield start


@pytest.fixture
def mlops_pipeline(request: pytest.FixtureRequest, mlops_pipeline_image: BuiltImage, mlops_network: Network,
                   mlops_s3: S3Service, mlops_containers_settings: ContainersSettings) -> Iterator[PipelineRunner]:
    """The pipeline image: one-shot runs, long-running workers and shared volumes, all removed after the test."""
    with contextlib.ExitStack() as stack:
        yield PipelineRunner(request=request, stack=stack, image=mlops_pipeline_image.tag,
                             network=mlops_network, s3=mlops_s3, settings=mlops_containers_settings)


class PipelineRunner:
    """What `mlops_pipeline` gives a test: `run(...)`, `start(...)` and `volume()`."""

    def __init__(self, *, request: pytest.FixtureRequest, stack: contextlib.ExitStack, image: str,
                 network: Network, s3: S3Service, settings: ContainersSettings) -> None:
        self._request, self._stack, self.image = request, stack, image
        self._network, self._s3, self._settings = network, s3, settings

    def volume(self, mount: str = "/data") -> str:
        return self._stack.enter_context(app_volume(settings=self._settings, image=self.image, mount=mount))

    def run(self, command: Sequence[str], *, env: Mapping[str, str] | None = None,
            volumes: Mapping[str, str] | None = None, timeout: float = 600) -> tuple[int, str]:
        """A Job-like run to completion: (exit code, logs)."""
        return run_to_completion(image=self.image, settings=self._settings, network=self._network,
                                 command=command, env={**self._s3.container_env(), **(env or {})},
                                 volumes=volumes, timeout=timeout)

    def start(self, command: Sequence[str], *, env: Mapping[str, str] | None = None,
              volumes: Mapping[str, str] | None = None, name: str | None = None) -> Running:
        """A long-running worker (a Deployment's pod); `.kill()` and `.restart()` it at will."""
        run = self._stack.enter_context(worker(
            image=self.image, settings=self._settings, network=self._network, command=command,
            env={**self._s3.container_env(), **(env or {})}, volumes=volumes, name=name))
        return _track(self._request, run)
