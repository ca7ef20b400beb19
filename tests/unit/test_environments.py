"""Every shipped environment loads; a broken file fails with one line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from environments import EnvironmentFileError, environment_names, load_environment
from harness.cli import app



def test_every_shipped_environment_loads() -> None:
    assert environment_names() == ["local", "dev", "staging", "prod"]
    for name in environment_names():
        env = load_environment(name)
        assert env.name == name
        assert env.gitops.path == f"envs/{name}"


def test_seed_requirements_survive_the_merge() -> None:
    prod = load_environment("prod")
    api = prod.apps.inference_api
    assert (api.autoscaling.min_replicas, api.autoscaling.max_replicas) == (2, 10)
    assert (api.autoscaling.cpu_utilization, api.autoscaling.memory_utilization) == (70, 80)
    assert api.port == 5000
    assert prod.apps.batch_pipeline.schedule == "0 2 * * *"
    assert prod.apps.cleanup.success_retention_hours == 7 * 24
    assert prod.apps.cleanup.failed_retention_hours == 12
    assert prod.aws and prod.aws.network.nat == "per_az" and prod.aws.network.az_count == 3
    gpu = prod.gpu_node_groups["gpu"]
    assert gpu.shape.gpus == 4 and any(t.key == "nvidia.com/gpu" for t in gpu.taints)
    # lists replace, mappings merge: prod's cpu group keeps the base labels
    assert prod.node_groups["cpu"].instance_types == ["m5.2xlarge", "m6i.2xlarge"]
    assert prod.node_groups["cpu"].labels == {"workload": "cpu"}


def test_local_has_no_cloud_and_names_pushed_images_by_digest() -> None:
    local = load_environment()
    assert local.name == "local" and local.aws is None
    assert local.images.pull_policy == "IfNotPresent"  # pulled from the registry, never side-loaded
    assert local.image("ml-inference-api") == "ml-inference-api:dev"  # before any push
    digest = "sha256:" + "a" * 64
    pushed = load_environment("local", {"images": {"registry": "localhost:5001", "digests": {"ml-inference-api": digest}}})
    assert pushed.image("ml-inference-api") == f"localhost:5001/ml-inference-api@{digest}"
    assert pushed.image("ml-pipeline") == "localhost:5001/ml-pipeline:dev"


def test_an_image_digest_that_is_not_sha256_is_refused_naming_the_field() -> None:
    with pytest.raises(EnvironmentFileError, match=r"images\.digests\.ml-pipeline"):
        load_environment("local", {"images": {"digests": {"ml-pipeline": "latest"}}})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: local\nnode_groups: {cpu: {min_sise: 1}}\n",
         "node_groups.cpu.min_sise: unknown key; allowed: capacity, desired_size"),
        ("name: local\napps: {inference_api: {expose: nodeport}}\n",
         "apps.inference_api.expose.0: Input should be 'cluster_ip', 'node_port', 'load_balancer' or 'ingress' (got 'nodeport')"),
        ("name: local\napps: {inference_api: {expose: [cluster_ip, node_port]}}\n",
         "apps.inference_api.expose: Value error, cluster_ip means no way in from outside the cluster"),
        ("name: local\napps: {inference_api: {expose: [node_port, node_port]}}\n",
         "apps.inference_api.expose: Value error, lists a way in twice"),
        ("name: local\napps: {inference_api: {expose: [node_port, ingress]}}\n",
         "apps.inference_api: Value error, expose: ingress needs ingress_host"),
        ("name: local\napps: {inference_api: {autoscaling: {min_replicas: '2'}}}\n",
         "apps.inference_api.autoscaling.min_replicas: Input should be a valid integer (got '2')"),
        ("name: local\nname: dev\n", "line 2: invalid YAML: duplicate key 'name'"),
        ("name: qa\n", "name: Input should be 'local', 'dev', 'staging' or 'prod' (got 'qa')"),
        ("name: local\nimages: {tag: latest}\n", "images.tag: Value error, images are pinned"),
        ("name: local\nnode_groups: {cpu: {instance_types: [x9.huge]}}\n",
         "node_groups.cpu.instance_types: Value error, unknown instance type 'x9.huge'; known:"),
        ("name: local\nnode_groups: {gpu: {taints: []}}\n",
         "node_groups.gpu: Value error, a gpu node group must carry the taint nvidia.com/gpu=true:NoSchedule"),
        ("name: local\nnode_groups: {cpu: {min_size: 3, desired_size: 2}}\n",
         "node_groups.cpu: Value error, sizes must satisfy min_size <= desired_size <= max_size"),
        ("name: prod\nproduction: true\naws: {region: eu-west-1}\n", "aws.network: required field is missing"),
        ("name: local\naws: {}\n", "aws.region: required field is missing"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(EnvironmentFileError) as info:
        load_environment(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_file_that_is_not_utf8_or_too_large_is_one_line_naming_it(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: local\ntags: {owner: caf\xe9}\n")
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"name: local\n" + b"# padding\n" * 200_000)
    for path, expected in ((binary, f"{binary}: byte 29: not UTF-8 text (invalid continuation byte)"),
                           (huge, f"{huge}: 2,000,012 bytes: an environment file is at most 1,048,576 bytes")):
        with pytest.raises(EnvironmentFileError) as info:
            load_environment(path)
        assert str(info.value) == expected


def test_gpu_variants_asked_for_where_no_gpu_group_exists_are_refused() -> None:
    no_gpu = {"node_groups": {"gpu": {"kind": "cpu", "instance_types": ["m5.xlarge"], "labels": {"workload": "cpu"},
                                      "taints": []}}}
    with pytest.raises(EnvironmentFileError, match="apps.fraud_pipeline.use_gpu is true but node_groups has no "
                                                    "group of kind gpu: add one or set use_gpu: false"):
        load_environment("staging", overrides=no_gpu)
    env = load_environment("staging", overrides={**no_gpu, "apps": {"fraud_pipeline": {"use_gpu": False}}})
    assert not env.has_gpu and not env.fraud_on_gpu


def test_fault_injection_is_refused_in_production() -> None:
    with pytest.raises(EnvironmentFileError, match="fault_injection_allowed is refused in production"):
        load_environment("prod", overrides={"apps": {"inference_api": {"fault_injection_allowed": True}}})


def test_unknown_environment_lists_the_shipped_ones() -> None:
    with pytest.raises(EnvironmentFileError, match="no such environment 'qa'; shipped: local, dev, staging, prod"):
        load_environment("qa")


def test_cli_check_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["env", "check"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["env", "check", str(_write(tmp_path, "name: local\nperf: {regression_ratio: 0.5}\n"))])
    assert bad.exit_code == 1
    assert "perf.regression_ratio: Input should be greater than 1" in bad.output


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # seed 004's "performance" worker (4 CPU requested) on 4-vCPU nodes: 3920m allocatable on EKS
        ({"node_groups": {"cpu": {"instance_types": ["m5.xlarge"]}}},
         "apps.fraud_pipeline.sizing: requests of 4 CPU / 8Gi fit no cpu node: the largest offers 3920m"),
        ({"node_groups": {"gpu": {"instance_types": ["g5.2xlarge"]}}},
         "need 23 GPUs but the gpu node groups at max_size offer 6"),  # inference at its HPA max: 20
        ({"storage": {"shared_volume": {"read_write_many": False}}},
         "need 23 GPUs but one gpu node (the ReadWriteOnce shared volume keeps every stage on one node) offer 4"),
    ],
)
def test_workloads_that_fit_no_node_are_refused_before_any_cluster(overrides: dict, expected: str) -> None:
    with pytest.raises(EnvironmentFileError) as info:
        load_environment("prod", overrides=overrides)
    assert expected in str(info.value)


def test_gpu_demand_is_not_checked_where_the_fraud_pipeline_runs_on_cpu() -> None:
    env = load_environment("prod", overrides={
        "node_groups": {"gpu": {"instance_types": ["g5.xlarge"]}}, "apps": {"fraud_pipeline": {"use_gpu": False}},
    })
    assert not env.fraud_on_gpu and env.has_gpu


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("memory", "512m", "memory quantity '512m'"),     # milli-bytes: the workloads could never be rendered
    ("cpu", "1Gi", "cpu quantity '1Gi'"),
])
def test_a_quantity_the_workloads_cannot_compute_with_is_refused_at_load(field: str, value: str, expected: str) -> None:
    with pytest.raises(EnvironmentFileError, match=f"sizing.minimal.api.requests.{field}.*{expected}"):
        load_environment("dev", {"sizing": {"minimal": {"api": {"requests": {field: value}}}}})


# Seed 001's network: two AZs, /24 subnets written out by hand.
SEED_001_NETWORK = {"vpc_cidr": "10.0.0.0/16", "az_count": 2,
                    "public_subnet_cidrs": ["10.0.1.0/24", "10.0.2.0/24"],
                    "private_subnet_cidrs": ["10.0.10.0/24", "10.0.11.0/24"]}


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ({"public_subnet_cidrs": ["10.1.1.0/24", "10.0.2.0/24"]},
         "aws.network.public_subnet_cidrs: Value error, [0] 10.1.1.0/24 is not inside vpc_cidr 10.0.0.0/16"),
        ({"private_subnet_cidrs": ["10.0.10.0/24", "10.0.1.0/24"]},
         "aws.network.private_subnet_cidrs: Value error, [1] 10.0.1.0/24 overlaps 10.0.1.0/24"),
        ({"public_subnet_cidrs": ["10.0.1.0/24", "10.0.1.128/25"]},
         "aws.network.public_subnet_cidrs: Value error, [1] 10.0.1.128/25 overlaps 10.0.1.0/24"),
        ({"az_count": 3},
         "aws.network.public_subnet_cidrs: Value error, 2 CIDRs for az_count 3: expected one per AZ"),
        ({"private_subnet_cidrs": ["10.0.10.0/24", "10.0.11.7/24"]},
         "aws.network.private_subnet_cidrs: Value error, [1] '10.0.11.7/24' is not an IPv4 CIDR"),
        ({"private_subnet_cidrs": None},
         "aws.network: Value error, public_subnet_cidrs and private_subnet_cidrs are set together"),
    ],
)
def test_an_explicit_subnet_layout_is_checked_against_the_vpc(network: dict, expected: str) -> None:
    with pytest.raises(EnvironmentFileError) as info:
        load_environment("staging", overrides={"aws": {"network": {**SEED_001_NETWORK, **network}}})
    assert str(info.value).startswith(f"environments/staging.yaml: {expected}")


def test_seed_001_network_is_expressible() -> None:
    seeded, default = load_environment("staging", overrides={"aws": {"network": SEED_001_NETWORK}}).aws, \
        load_environment("staging").aws
    assert seeded is not None and default is not None
    net = seeded.network
    assert (net.public_subnet_cidrs, net.private_subnet_cidrs) == (["10.0.1.0/24", "10.0.2.0/24"],
                                                                   ["10.0.10.0/24", "10.0.11.0/24"])
    assert default.network.public_subnet_cidrs is None  # computed by default


def test_each_app_has_its_own_model_family_and_the_api_takes_seed_001s_20_features() -> None:
    from apps.fraud.records import FEATURE_NAMES

    for name in environment_names():
        env = load_environment(name)
        assert env.apps.inference_api.model_family == "inference"
        assert env.models["inference"].feature_names == [f"f{i}" for i in range(20)]
        # The fraud family's contract is the fraud stages' own feature order, written once in apps.
        assert env.models["fraud"].feature_names == list(FEATURE_NAMES)
        assert env.models["pcc"].feature_names is None  # the featurizer defines them


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"apps": {"inference_api": {"model_family": "fraud"}}},
     "apps.inference_api.model_family: family 'fraud' takes 17 features [log_amount, hour_sin, hour_cos, ...], "
     "classes [0, 1], but the API's clients send 20 features [f0, f1, f2, ...] (apps.inference_api.features)"),
    ({"apps": {"inference_api": {"model_family": "pcc"}}},
     "family 'pcc' takes features defined by its featurizer"),
    ({"models": {"inference": {"training": {"source": "pcc_cases", "embedder": "hashing"}}}},
     "models.inference: Value error, features are declared for every training source but pcc_cases"),
    ({"models": {"fraud": {"training": {"embedder": "hashing"}}}},
     "models.fraud.training: Value error, embedder is set for the pcc_cases source only"),
    ({"models": {"inference": {"classes": [1, 1]}}}, "classes are unique, got [1, 1]"),
    ({"models": {"inference": {"features": 0}}}, "a feature count is 1..100000, got 0"),
])
def test_an_incoherent_model_contract_is_refused_naming_both_schemas(overrides: dict, expected: str) -> None:
    with pytest.raises(EnvironmentFileError) as info:
        load_environment("local", overrides=overrides)
    assert expected in str(info.value)


def test_the_api_may_serve_another_family_of_its_own_schema() -> None:
    fraud_features = load_environment().models["fraud"].feature_names
    env = load_environment("local", overrides={
        "apps": {"inference_api": {"model_family": "fraud", "features": fraud_features}}})
    assert env.apps.inference_api.model_family == "fraud"
