"""The apps an environment is made of, in one place: name, workload spec, namespace, wave."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from apps.addons import metrics_server
from apps.api import workload as api
from apps.batch import workload as batch
from apps.cleanup import workload as cleanup
from apps.fraud import workload as fraud
from apps.k8s import Obj
from environments.model import Environment


@dataclass(frozen=True)
class AppSpec:
    name: str
    module: ModuleType
    # Order among the Applications of the root app: cleanup runs in the batch namespace.
    wave: int
    enabled: Callable[[Environment], bool]
    # False when the app lives in another app's namespace (Argo CD then creates it if missing).
    owns_namespace: bool = True

    def namespace(self, env: Environment) -> str:
        return self.module.namespace(env)  # type: ignore[no-any-return]

    def service_account(self) -> str:
        return self.module.SERVICE_ACCOUNT  # type: ignore[no-any-return]

    def objects(self, env: Environment, *, role_arn: str | None) -> list[Obj]:
        return self.module.objects(env, role_arn=role_arn)  # type: ignore[no-any-return]


APPS: tuple[AppSpec, ...] = (
    AppSpec(api.APP, api, wave=0, enabled=lambda e: e.apps.inference_api.enabled),
    AppSpec(batch.APP, batch, wave=0, enabled=lambda e: e.apps.batch_pipeline.enabled),
    AppSpec(fraud.APP, fraud, wave=0, enabled=lambda e: e.apps.fraud_pipeline.enabled),
    AppSpec(cleanup.APP, cleanup, wave=1, enabled=lambda e: e.apps.cleanup.enabled, owns_namespace=False),
)


# Platform add-ons: synced before the apps (an earlier wave); they run upstream images and call
# no AWS API of ours, so they get neither a registry nor an IAM role.
ADDONS: tuple[AppSpec, ...] = (
    AppSpec(metrics_server.APP, metrics_server, wave=-1, enabled=lambda e: e.addons.metrics_server.enabled,
            owns_namespace=False),
)


def enabled_apps(env: Environment) -> list[AppSpec]:
    """The ML apps of `env` (each with its image and, in the cloud, its IAM role)."""
    return [a for a in APPS if a.enabled(env)]


def enabled_addons(env: Environment) -> list[AppSpec]:
    return [a for a in ADDONS if a.enabled(env)]
