"""Cluster fixtures (kwok, kind, existing) and deploy helpers.

Options (group "mlops"): `--mlops-cluster=kwok|kind|existing` (else $MLOPS_CLUSTER, else kwok),
`--mlops-keep-cluster` (else $MLOPS_KEEP_CLUSTER=1) to reuse clusters between runs,
`--mlops-kubeconfig`/`--mlops-kube-context` for `existing` (else $KUBECONFIG). `--cluster` and
`--keep-cluster` are kept as aliases of the first two.

Fixtures: `cluster_provider`, `clusters` (one cluster per environment, shaped like it),
`deployed_env` (a factory: the environment's rendered tree applied and its Deployments
available). A failing test that used `deployed_env` gets the events, status and logs of its
namespaces in its report.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
import pytest
from lightkube import Client

from argocd.render import RenderedTree, render_environment
from environments import load_environment
from environments.model import Environment
from harness.clusters.deploy import Applied, apply_tree, static_volumes
from harness.clusters.diagnostics import dump
from harness.clusters.errors import ProviderUnavailableError
from harness.clusters.kube import client_for
from harness.clusters.nodes import for_simulated_nodes, simulated_cloud
from harness.clusters.providers import PROVIDER_NAMES, ClusterInfo, ClusterProvider, KindProvider, make_provider
from harness.clusters.session import cluster_session
from harness.config import flag
from harness.containers.build import ImageSet
from harness.containers.registry import PushedImages, local_registry, push_local

CLUSTER_FIXTURES = {"cluster_provider", "clusters", "deployed_env"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlops", "mlops toolkit: real containers and clusters")
    group.addoption("--mlops-cluster", "--cluster", dest="mlops_cluster", choices=PROVIDER_NAMES, default=None,
                    help="cluster provider (env MLOPS_CLUSTER; default kwok)")
    group.addoption("--mlops-keep-cluster", "--keep-cluster", dest="mlops_keep_cluster", action="store_true",
                    default=None, help="keep clusters for the next run (env MLOPS_KEEP_CLUSTER=1)")
    group.addoption("--mlops-kubeconfig", default=None, help="kubeconfig for --mlops-cluster=existing (default $KUBECONFIG)")
    group.addoption("--mlops-kube-context", default=None, help="context for --mlops-cluster=existing (default: current)")


@dataclass
class ClusterSettings:
    provider: str
    keep: bool
    kubeconfig: Path | None
    context: str | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> ClusterSettings:
        provider = config.getoption("--mlops-cluster") or os.environ.get("MLOPS_CLUSTER") or "kwok"
        if provider not in PROVIDER_NAMES:
            raise pytest.UsageError(f"MLOPS_CLUSTER={provider!r}: expected one of {', '.join(PROVIDER_NAMES)}")
        try:
            keep = flag(config.getoption("--mlops-keep-cluster"), env="MLOPS_KEEP_CLUSTER")
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        kubeconfig = config.getoption("--mlops-kubeconfig")
        if kubeconfig and provider != "existing":
            raise pytest.UsageError("--mlops-kubeconfig only applies to --mlops-cluster=existing")
        return cls(provider, keep, Path(kubeconfig).expanduser() if kubeconfig else None, config.getoption("--mlops-kube-context"))

    def make_provider(self) -> ClusterProvider:
        return make_provider(self.provider, kubeconfig=self.kubeconfig, context=self.context)

    def cluster_name(self, env: str) -> str:
        # Kept clusters have stable names so the next run finds them; others are per run.
        return f"mlops-{env}" if self.keep else f"mlops-{env}-{os.getpid()}"


_SETTINGS = pytest.StashKey[ClusterSettings]()
_CREATED = pytest.StashKey[list[ClusterInfo]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SETTINGS] = ClusterSettings.from_config(config)
    config.stash[_CREATED] = []


@pytest.hookimpl(trylast=True)  # after the containers plugin started (and owns) the Docker engine
def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the toolchain (and kind's node image) before the first cluster test, outside any test's timeout."""
    config = session.config
    settings = config.stash[_SETTINGS]
    if config.option.collectonly:
        return
    used = set().union(*(set(getattr(item, "fixturenames", ())) for item in session.items))
    wants_kwok = settings.provider == "kwok" and bool(CLUSTER_FIXTURES & used)
    wants_kind = KIND_FIXTURE in used or (settings.provider == "kind" and bool(CLUSTER_FIXTURES & used))
    if not (wants_kwok or wants_kind):
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    from harness.clusters.providers.kwok import TOOLS
    from harness.toolchain import ToolchainError, ensure_tools

    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        try:
            if wants_kwok:
                ensure_tools(TOOLS)
            if wants_kind:
                # The node image (and the toolchain under it) is long work the first time: here,
                # outside any test's timeout, with its progress shown.
                from harness.clusters.providers.kind import node_image

                node_image(log=lambda line: print(f"[mlops kind] {line}", flush=True))
        except ToolchainError as e:
            # The tests skip with this reason (cluster_provider re-checks); the run goes on.
            config.stash[_TOOLCHAIN_ERROR] = str(e)
        except Exception as e:  # noqa: BLE001 - the kind fixtures fail with it
            config.stash[_KIND_ERROR] = f"{type(e).__name__}: {e}"


_TOOLCHAIN_ERROR = pytest.StashKey[str]()
_KIND_ERROR = pytest.StashKey[str]()
KIND_FIXTURE = "kind_cluster"


@pytest.fixture(scope="session")
def cluster_settings(pytestconfig: pytest.Config) -> ClusterSettings:
    return pytestconfig.stash[_SETTINGS]


@pytest.fixture(scope="session")
def cluster_provider(pytestconfig: pytest.Config, cluster_settings: ClusterSettings) -> ClusterProvider:
    if _TOOLCHAIN_ERROR in pytestconfig.stash:
        pytest.fail(f"toolchain build failed: {pytestconfig.stash[_TOOLCHAIN_ERROR]}")
    provider = cluster_settings.make_provider()
    reason = provider.unavailable_reason()
    if reason:
        pytest.skip(f"--mlops-cluster={provider.name}: {reason}")
    return provider


@dataclass
class ClusterPool:
    """One cluster per environment name, created on first use, torn down with the session."""

    provider: ClusterProvider
    settings: ClusterSettings
    stack: contextlib.ExitStack
    created: list[ClusterInfo]
    infos: dict[str, ClusterInfo] = field(default_factory=dict)

    def get(self, env: Environment) -> ClusterInfo:
        if env.name not in self.infos:
            name = self.settings.cluster_name(env.name)
            try:
                info = self.stack.enter_context(cluster_session(self.provider, name, env=env, keep=self.settings.keep))
            except ProviderUnavailableError as e:
                pytest.skip(str(e))
            self.infos[env.name] = info
            self.created.append(info)
        return self.infos[env.name]


@pytest.fixture(scope="session")
def clusters(pytestconfig: pytest.Config, cluster_provider: ClusterProvider, cluster_settings: ClusterSettings) -> Iterator[ClusterPool]:
    with contextlib.ExitStack() as stack:
        yield ClusterPool(cluster_provider, cluster_settings, stack, pytestconfig.stash[_CREATED])


@pytest.fixture(scope="session")
def kind_images(mlops_docker: Any, mlops_images: ImageSet, mlops_containers_settings: Any) -> PushedImages:
    """The base, MinIO and app images pushed to the local registry (only what it lacks): what
    kind's pods pull, by digest. `kind_images.deployed(env)` names them in a tree."""
    return push_local(mlops_docker.client, mlops_images.by_repository(), settings=mlops_containers_settings, log=print)


@pytest.fixture(scope="session")
def kind_cluster(pytestconfig: pytest.Config, kind_images: PushedImages) -> Iterator[ClusterInfo]:
    """A kind cluster shaped like `local` whatever --mlops-cluster says (real pods), deleted after the
    session unless kept. Its nodes pull from the local registry (kind_images), nothing side-loaded."""
    if _KIND_ERROR in pytestconfig.stash:
        pytest.fail(f"kind's node image could not be built: {pytestconfig.stash[_KIND_ERROR]}")
    env = load_environment("local")
    provider = KindProvider(registry=local_registry())
    reason = provider.unavailable_reason()
    if reason:
        pytest.fail(f"the kind provider must work on this machine: {reason}")
    settings = pytestconfig.stash[_SETTINGS]
    name = f"mlops-kind-{os.getpid()}" if not settings.keep else "mlops-kind"
    with cluster_session(provider, name, env=env, keep=settings.keep) as info:
        pytestconfig.stash[_CREATED].append(info)
        yield info


@dataclass
class DeployedEnv:
    """An environment's rendered tree applied to its cluster."""

    env: Environment
    cluster: ClusterInfo
    client: Client
    tree: RenderedTree
    applied: Applied
    seconds: float

    def diagnostics(self) -> str:
        return dump(self.client, self.applied.namespaces)


@pytest.fixture(scope="session")
def deployed_env(clusters: ClusterPool) -> Callable[[str], DeployedEnv]:
    """`deployed_env("local")`: the env's tree applied to its cluster (server-side, in sync-wave order)."""
    cache: dict[str, DeployedEnv] = {}

    def deploy(env_name: str) -> DeployedEnv:
        if env_name not in cache:
            env = load_environment(env_name)
            info = clusters.get(env)
            if info.simulated:
                env = for_simulated_nodes(env)
            client = client_for(info.kubeconfig)
            tree = render_environment(env, cloud=simulated_cloud(env))
            started = time.monotonic()
            if info.simulated:
                static_volumes(client, tree)
            applied = apply_tree(client, tree, wait_claims=info.simulated)
            cache[env_name] = DeployedEnv(env, info, client, tree, applied, time.monotonic() - started)
        return cache[env_name]

    return deploy


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                               ) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, DeployedEnv):
            try:
                text = value.diagnostics()
            except Exception as e:  # noqa: BLE001 - diagnostics must never mask the failure
                text = f"(diagnostics failed: {e})"
            report.sections.append((f"cluster {value.cluster.name}: events, status, logs", text))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    created = config.stash.get(_CREATED, [])
    for info in created:
        verb = "created" if info.created else "reused"
        terminalreporter.write_line(f"mlops cluster: {info.provider}/{info.name} {verb} in {info.seconds:.1f}s")
