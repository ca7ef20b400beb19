"""Guardrails: bad production files are refused with the field named, before any resource exists."""

from __future__ import annotations

import pytest
from pulumi.runtime.mocks import set_mocks
from pulumi.runtime.settings import set_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from environments import load_environment
from infra import guardrails
from infra.errors import GuardrailError
from infra.mocks import PlatformMocks
from infra.platform import deploy
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

BAD_PROD = [
    ({"aws": {"network": {"nat": "single"}}}, "aws.network.nat", "per_az"),
    ({"aws": {"network": {"az_count": 2}}}, "aws.network.az_count", "at least 3"),
    ({"aws": {"cluster": {"public_access_cidrs": []}}}, "aws.cluster.public_access_cidrs", "is empty"),
    ({"aws": {"cluster": {"public_access_cidrs": ["0.0.0.0/0"]}}}, "aws.cluster.public_access_cidrs", "0.0.0.0/0"),
    ({"aws": {"cluster": {"deletion_protection": False}}}, "aws.cluster.deletion_protection", "deletion protection"),
]


def _deploy_under_mocks(name: str, overrides: dict) -> tuple[PlatformMocks, GuardrailError]:
    """Run the program, which must refuse; the mocks (to see what was created) and the refusal."""
    env = load_environment(name, overrides)
    mocks = PlatformMocks(aws(env).region)
    # pulumi resets the root on None; its annotation names only Resource.
    set_root_resource(None)  # type: ignore[arg-type]
    set_mocks(mocks, project="ml-platform", stack=env.name, preview=False)

    def program() -> None:
        deploy(env)

    with pytest.raises(GuardrailError) as caught:
        _sync_await(run_pulumi_func(program))
    return mocks, caught.value


@pytest.mark.parametrize("overrides, field, hint", BAD_PROD, ids=[b[1] + ":" + b[2] for b in BAD_PROD])
def test_prod_refuses_with_field_named_and_nothing_created(overrides: dict, field: str, hint: str) -> None:
    mocks, error = _deploy_under_mocks("prod", overrides)
    message = str(error)
    assert f"environments/prod.yaml: {field}:" in message
    assert hint in message
    assert "nothing was created" in message
    assert mocks.created == {}, f"resources were declared before the guardrail: {list(mocks.created)}"


def test_an_explicit_two_az_layout_does_not_pass_production() -> None:
    # Seed 001's own network (two AZs, /24s) is fine for staging but not for prod.
    seed = {"aws": {"network": {"vpc_cidr": "10.0.0.0/16", "az_count": 2,
                                "public_subnet_cidrs": ["10.0.1.0/24", "10.0.2.0/24"],
                                "private_subnet_cidrs": ["10.0.10.0/24", "10.0.11.0/24"]}}}
    mocks, error = _deploy_under_mocks("prod", seed)
    assert "aws.network.az_count: is 2" in str(error)
    assert mocks.created == {}
    assert guardrails.check(load_environment("staging", seed)) == []


def test_all_violations_reported_at_once() -> None:
    env = load_environment("prod", {"aws": {"network": {"nat": "single", "az_count": 2},
                                            "cluster": {"deletion_protection": False}}})
    fields = [v.field for v in guardrails.check(env)]
    assert fields == ["aws.network.nat", "aws.network.az_count", "aws.cluster.deletion_protection"]


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_non_production_may_relax_and_says_so(name: str) -> None:
    env = load_environment(name)
    assert guardrails.check(env) == []
    relaxed = {v.field for v in guardrails.relaxed(env)}
    assert "aws.network.nat" in relaxed and "aws.cluster.deletion_protection" in relaxed


def test_shipped_prod_passes() -> None:
    assert guardrails.check(load_environment("prod")) == []


@pytest.mark.parametrize("overrides, field", [
    ({"aws": {"network": {"nat": "none"}}}, "aws.network.nat"),
    ({"storage": {"data_uri": "file:///tmp/data"}}, "storage.data_uri"),
    ({"storage": {"models_uri": "s3://ml-platform-dev-data/models"}}, "storage.models_uri"),
    ({"addons": {"efs_csi_driver": {"performance_mode": "maxIO", "throughput_mode": "elastic"}}},
     "addons.efs_csi_driver.throughput_mode"),
])
def test_rules_every_cloud_env_keeps(overrides: dict, field: str) -> None:
    mocks, error = _deploy_under_mocks("dev", overrides)
    assert f"environments/dev.yaml: {field}:" in str(error)
    assert mocks.created == {}
