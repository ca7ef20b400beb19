"""The Docker-only tests run containers as the rendered workloads say: one source, the tree."""

from __future__ import annotations

import pytest

from argocd.render import render_environment
from environments import load_environment
from harness.containers.workloads import WorkloadNotFound, pod_spec, shape_for, workload_shape
from harness.load.target import HARNESS_SETTINGS, Faults, api_settings_env


def test_the_api_container_runs_as_its_deployment_says() -> None:
    tree = render_environment(load_environment("local"))
    shape = workload_shape(tree, ["python", "-m", "apps.api"])
    [dep] = [o for o in tree.app_objects() if o.kind == "Deployment" and o.name == "ml-inference-api"]
    [container] = pod_spec(dep)["containers"]
    ctx = container["securityContext"]
    kwargs = shape.create_kwargs()
    assert kwargs["user"] == f"{ctx['runAsUser']}:{ctx['runAsGroup']}"
    assert kwargs["read_only"] is ctx["readOnlyRootFilesystem"] is True
    assert kwargs["cap_drop"] == ctx["capabilities"]["drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["mem_limit"] == 1024**3 and set(shape.tmpfs) == {"/tmp"}
    [config_map] = [o for o in tree.app_objects() if o.kind == "ConfigMap" and o.name == "ml-inference-config"]
    assert config_map.manifest["data"].items() <= shape.environment.items()
    assert shape.environment["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/s3/credentials"  # container env


def test_a_change_in_the_environment_reaches_the_docker_settings() -> None:
    bigger = load_environment("local", overrides={"sizing": {"minimal": {"api": {"limits": {"memory": "3Gi"}}}},
                                                  "apps": {"inference_api": {"batch_limit": 64}}})
    shape = workload_shape(render_environment(bigger), ["python", "-m", "apps.api"])
    assert shape.create_kwargs()["mem_limit"] == 3 * 1024**3 and shape.environment["BATCH_LIMIT"] == "64"


def test_a_harness_run_api_gets_its_deployments_environment_but_for_what_the_harness_sets() -> None:
    """The load gates' API (process or container) is the Deployment of the caller's environment."""
    env = load_environment("local", overrides={"apps": {"inference_api": {"batch_limit": 77}}})
    deployed = workload_shape(render_environment(env), ["python", "-m", "apps.api"]).environment
    given = api_settings_env(env, registry_uri="file:///srv/models", port=5999, faults=Faults(latency_ms=5))
    assert {k: v for k, v in given.items() if k not in HARNESS_SETTINGS} == \
        {k: v for k, v in deployed.items() if k not in HARNESS_SETTINGS}
    assert given["BATCH_LIMIT"] == "77"  # the caller's environment, not a fresh load of its file
    assert (given["PORT"], given["MODEL_REGISTRY_URI"], given["FAULT_LATENCY_MS"]) == ("5999", "file:///srv/models", "5")


def test_pipeline_commands_find_their_workload_and_others_get_only_its_security() -> None:
    run = shape_for(["python", "-m", "apps.batch", "run", "--partition", "20250101"], image="ml-pipeline")
    assert run is not None
    assert run.ref == "CronJob pcc-system/pcc-daily-pipeline" and run.environment["SOURCE"] == "parquet"
    assert {"/tmp", "/app/logs", "/app/models"} <= set(run.tmpfs)
    stage = shape_for(["python", "-m", "apps.fraud", "inference"], image="ml-pipeline")
    assert stage is not None
    assert stage.ref == "Deployment fraud-pipeline/inference-gpu"  # the variant local runs (replicas > 0)
    assert stage.environment["QUEUE_ROOT"] == "/mnt/flashblade" and stage.environment["DEVICE"] == "gpu"
    reader = shape_for(["sleep", "3600"], image="ml-pipeline")
    assert reader is not None
    assert reader.environment == {} and reader.create_kwargs()["read_only"] is True
    assert shape_for(["python", "-c", "print(1)"], image="mlops-base") is None  # no workload runs that image
    with pytest.raises(WorkloadNotFound, match="no workload of local's tree runs sleep 1"):
        workload_shape(render_environment(load_environment("local")), ["sleep", "1"])
