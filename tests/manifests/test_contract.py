"""The environment each rendered container gets is accepted by that app's own settings."""

from __future__ import annotations

import pytest

from argocd.render import RenderedTree
from tests.manifests.conftest import ENVS

pytestmark = pytest.mark.manifests


def container_environ(tree: RenderedTree, kind: str, name: str) -> dict[str, str]:
    """What the process sees: the ConfigMap(s) it loads, then its own env entries."""
    obj = next(o.manifest for o in tree.objects if o.kind == kind and o.name == name)
    pod = (
        obj["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else obj["spec"]["template"]["spec"]
    )
    container = pod["containers"][0]
    maps = {
        o.name: o.manifest["data"]
        for o in tree.objects
        if o.kind == "ConfigMap" and o.namespace == obj["metadata"]["namespace"]
    }
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        environ.update(maps[source["configMapRef"]["name"]])
    environ.update({e["name"]: e["value"] for e in container.get("env", [])})
    return environ


@pytest.mark.parametrize("name", ENVS)
def test_api_accepts_its_environment(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.api.settings import Settings

    settings = Settings.from_environ(container_environ(trees[name], "Deployment", "ml-inference-api"))
    assert settings.port == int(container_environ(trees[name], "Deployment", "ml-inference-api")["PORT"])


@pytest.mark.parametrize("name", ENVS)
def test_batch_accepts_its_environment(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.batch.settings import BatchSettings

    BatchSettings.from_env(container_environ(trees[name], "CronJob", "pcc-daily-pipeline"))


@pytest.mark.parametrize("name", ENVS)
@pytest.mark.parametrize("stage", ["data-gather", "preprocessing-gpu", "model-build", "inference-cpu"])
def test_fraud_stages_accept_their_environment(name: str, stage: str, trees: dict[str, RenderedTree]) -> None:
    from apps.fraud.settings import FraudSettings

    settings = FraudSettings.from_env(container_environ(trees[name], "Deployment", stage))
    assert str(settings.queue_root) == "/mnt/flashblade"


@pytest.mark.parametrize("name", ENVS)
def test_cleanup_accepts_its_environment(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.cleanup.settings import CleanupSettings

    CleanupSettings.from_env(container_environ(trees[name], "CronJob", "data-cleanup"))
