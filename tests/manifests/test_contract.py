"""The environment each rendered container gets is read by that app's own settings as the environment
file says: the workload objects and the apps agree on every name and value."""

from __future__ import annotations

import pytest

from argocd.render import RenderedTree
from environments import load_environment
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
def test_api_reads_what_its_environment_says(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.api.settings import Settings

    env, api = load_environment(name), load_environment(name).apps.inference_api
    settings = Settings.from_environ(container_environ(trees[name], "Deployment", "ml-inference-api"))
    assert (settings.port, settings.batch_limit, settings.reload_interval_s) == \
        (api.port, api.batch_limit, api.reload_interval_s)
    assert (settings.max_body_bytes, settings.max_connections) == (api.body_limit, api.max_connections)
    assert settings.model_registry_uri == env.model_registry_uri("inference")
    # Every replica holds the family's contract: seed 001's 20 features.
    assert settings.model_contract is not None and settings.model_contract.features == [f"f{i}" for i in range(20)]
    assert (settings.log_level, settings.fault_injection_allowed) == (env.log_level, api.fault_injection_allowed)


@pytest.mark.parametrize("name", ENVS)
def test_each_bootstrap_job_reads_its_familys_contract(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.bootstrap.settings import BootstrapSettings

    env = load_environment(name)
    for family in env.families_in_use:
        settings = BootstrapSettings.from_env(container_environ(trees[name], "Job", f"model-bootstrap-{family}"))
        assert (settings.family, settings.registry_uri) == (family, env.model_registry_uri(family))
        assert settings.contract == env.models[family] and settings.log_level == env.log_level


@pytest.mark.parametrize("name", ENVS)
def test_batch_reads_what_its_environment_says(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.batch.settings import BatchSettings

    env = load_environment(name)
    settings = BatchSettings.from_env(container_environ(trees[name], "CronJob", "pcc-daily-pipeline"))
    assert (settings.data_uri, settings.model_registry_uri) == (env.storage.data_uri, env.model_registry_uri("pcc"))
    assert (settings.source, settings.tz, settings.log_level) == \
        (env.apps.batch_pipeline.source, env.apps.batch_pipeline.time_zone, env.log_level)


@pytest.mark.parametrize("name", ENVS)
@pytest.mark.parametrize("stage", ["data-gather", "preprocessing-gpu", "model-build", "inference-cpu"])
def test_fraud_stages_read_what_their_environment_says(name: str, stage: str, trees: dict[str, RenderedTree]) -> None:
    from apps.fraud.settings import FraudSettings

    env, fraud = load_environment(name), load_environment(name).apps.fraud_pipeline
    settings = FraudSettings.from_env(container_environ(trees[name], "Deployment", stage))
    assert str(settings.queue_root) == "/mnt/flashblade"  # seed 002's mount, the claim's mountPath
    assert (settings.lease_s, settings.max_attempts, settings.log_level) == \
        (fraud.lease_s, fraud.max_attempts, env.log_level)


@pytest.mark.parametrize("name", ENVS)
def test_cleanup_reads_what_its_environment_says(name: str, trees: dict[str, RenderedTree]) -> None:
    from apps.cleanup.settings import CleanupSettings

    env, cleanup = load_environment(name), load_environment(name).apps.cleanup
    settings = CleanupSettings.from_env(container_environ(trees[name], "CronJob", "data-cleanup"))
    assert settings.data_uri == env.storage.data_uri
    assert (settings.success_retention_hours, settings.failed_retention_hours, settings.dry_run) == \
        (cleanup.success_retention_hours, cleanup.failed_retention_hours, cleanup.dry_run)
