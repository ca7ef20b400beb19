"""The apps an environment is made of, in one place: name, workload spec, namespace, wave."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from apps.addons import metrics_server, prometheus_crds
from apps.addons.charts import CHARTS, Chart
from apps.api import workload as api
from apps.batch import workload as batch
from apps.bootstrap import workload as bootstrap
from apps.cleanup import workload as cleanup
from apps.fraud import workload as fraud
from apps.k8s import Obj
from environments.model import Environment


# Upstream charts (and CRDs) first: the apps' objects of their kinds follow in later waves.
CHART_WAVE = -2


class Workload(Protocol):
    """What an app's (or a rendered add-on's) module offers: `apps/<app>/workload.py` and the like."""

    # Read-only: a module's `SERVICE_ACCOUNT = "x"` (a str) then satisfies `str | None`.
    @property
    def SERVICE_ACCOUNT(self) -> str | None: ...

    def namespace(self, env: Environment) -> str: ...

    def objects(self, env: Environment, *, role_arn: str | None = None) -> list[Obj]: ...


class AppWorkload(Workload, Protocol):
    """An ML app's module: it runs an image of ours under its own service account."""

    @property
    def SERVICE_ACCOUNT(self) -> str: ...

    @property
    def IMAGE(self) -> str: ...


W = TypeVar("W", bound=Workload, covariant=True)


@dataclass(frozen=True)
class AppSpec(Generic[W]):
    name: str
    module: W
    # Order among the Applications of the root app: cleanup runs in the batch namespace.
    wave: int
    enabled: Callable[[Environment], bool]
    # False when the app lives in another app's namespace (Argo CD then creates it if missing).
    owns_namespace: bool = True

    def namespace(self, env: Environment) -> str:
        return self.module.namespace(env)

    def service_account(self) -> str | None:
        return self.module.SERVICE_ACCOUNT

    def objects(self, env: Environment, *, role_arn: str | None) -> list[Obj]:
        return self.module.objects(env, role_arn=role_arn)


APPS: tuple[AppSpec[AppWorkload], ...] = (
    # Each model family's first model, before the apps that serve it (apps/bootstrap).
    AppSpec(bootstrap.APP, bootstrap, wave=-1, enabled=bootstrap.enabled),
    AppSpec(api.APP, api, wave=0, enabled=lambda e: e.apps.inference_api.enabled),
    AppSpec(batch.APP, batch, wave=0, enabled=lambda e: e.apps.batch_pipeline.enabled),
    AppSpec(fraud.APP, fraud, wave=0, enabled=lambda e: e.apps.fraud_pipeline.enabled),
    AppSpec(cleanup.APP, cleanup, wave=1, enabled=lambda e: e.apps.cleanup.enabled, owns_namespace=False),
)


# Platform add-ons rendered from the tree, local clusters included: synced before the apps (an
# earlier wave); they run upstream images and call no AWS API, so get neither registry nor role.
ADDONS: tuple[AppSpec[Workload], ...] = (
    AppSpec(prometheus_crds.APP, prometheus_crds, wave=CHART_WAVE, enabled=lambda e: e.addons.prometheus_crds.enabled,
            owns_namespace=False),
    AppSpec(metrics_server.APP, metrics_server, wave=-1, enabled=lambda e: e.addons.metrics_server.enabled,
            owns_namespace=False),
)


def enabled_apps(env: Environment) -> list[AppSpec[AppWorkload]]:
    """The ML apps of `env` (each with its image and, in the cloud, its IAM role)."""
    return [a for a in APPS if a.enabled(env)]


def enabled_addons(env: Environment) -> list[AppSpec[Workload]]:
    return [a for a in ADDONS if a.enabled(env)]


def enabled_charts(env: Environment) -> list[Chart]:
    """The cloud add-ons Argo CD installs from their upstream Helm charts (apps.addons.charts)."""
    return [c for c in CHARTS if c.enabled(env)]


def model_families(env: Environment, app: str) -> list[str]:
    """The model families whose registries `app` reads (or, for the bootstrap and the fraud
    pipeline's model-build, writes): what its role may touch of the models bucket."""
    serves: dict[str, list[str]] = {api.APP: [env.apps.inference_api.model_family], batch.APP: ["pcc"],
                                    fraud.APP: ["fraud"], bootstrap.APP: list(env.families_in_use)}
    return serves.get(app, [])


def role_holders() -> set[str]:
    """Every name an IAM role may be rendered for: the apps and the add-ons that call AWS."""
    return {a.name for a in APPS} | {c.name for c in CHARTS if c.service_account}
