"""kind: where Docker has kind's node image, `--cluster=kind` runs the env tests on real pods; these
check what only kind adds (the project's images loaded, pods really running). Skipped elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lightkube.resources.core_v1 import Pod

from harness.clusters.deploy import wait_deployment_available
from harness.clusters.plugin import ClusterSettings, DeployedEnv
from harness.clusters.providers import KindProvider

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kind_local(cluster_settings: ClusterSettings, request: pytest.FixtureRequest) -> DeployedEnv:
    if cluster_settings.provider != "kind":
        reason = KindProvider().unavailable_reason() or "available"
        pytest.skip(f"kind tests run with --cluster=kind (kind here: {reason})")
    deployed_env: Callable[[str], DeployedEnv] = request.getfixturevalue("deployed_env")
    return deployed_env("local")


def test_kind_runs_real_pods_of_the_inference_api(kind_local: DeployedEnv) -> None:
    api = kind_local.env.apps.inference_api
    [dep] = [d for d in kind_local.applied.of_kind("Deployment") if d.namespace == api.namespace]
    wait_deployment_available(kind_local.client, dep.name, api.namespace, timeout=300)
    pods = list(kind_local.client.list(Pod, namespace=api.namespace))
    assert pods and all(p.status.containerStatuses and p.status.containerStatuses[0].ready for p in pods)
    assert not kind_local.cluster.simulated
