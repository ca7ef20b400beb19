"""Network: subnet math, NAT strategy, routes, flow logs and the S3 endpoint, per environment."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from environments import Environment
from infra.mocks import Run
from infra.network import nat_count
from tests.infra.conftest import aws

pytestmark = pytest.mark.infra

SUBNET = "aws:ec2/subnet:Subnet"


def test_subnets_inside_vpc_disjoint_one_per_az_and_tier(env: Environment, run: Run) -> None:
    net = aws(env).network
    vpc = ipaddress.IPv4Network(run.one("aws:ec2/vpc:Vpc").inputs["cidrBlock"])
    assert str(vpc) == net.vpc_cidr
    subnets = run.of_type(SUBNET)
    assert len(subnets) == 2 * net.az_count
    cidrs = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    for s, cidr in zip(subnets, cidrs, strict=True):
        assert cidr.subnet_of(vpc), f"{s.name} {cidr} is outside the VPC {vpc}"
        assert cidr.prefixlen == net.subnet_prefix()
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1:]:
            assert not a.overlaps(b), f"{a} overlaps {b}"
    for tier in ("public", "private"):
        azs = [s.inputs["availabilityZone"] for s in subnets if s.inputs["tags"]["tier"] == tier]
        assert len(azs) == len(set(azs)) == net.az_count, f"{tier} subnets must cover {net.az_count} distinct AZs: {azs}"
        assert all(az.startswith(aws(env).region) for az in azs)


def test_subnets_tagged_for_load_balancers_and_not_public_by_default(env: Environment, run: Run) -> None:
    cluster_tag = f"kubernetes.io/cluster/{aws(env).cluster.name}"
    for s in run.of_type(SUBNET):
        tags = s.inputs["tags"]
        role = "kubernetes.io/role/elb" if tags["tier"] == "public" else "kubernetes.io/role/internal-elb"
        assert tags.get(role) == "1", f"{s.name} lacks {role}"
        assert tags.get(cluster_tag) == "shared"
        assert s.inputs["mapPublicIpOnLaunch"] is False


def test_nat_per_strategy_and_private_routes(env: Environment, run: Run) -> None:
    net = aws(env).network
    nats = run.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == nat_count(net.nat, net.az_count)
    public = {s.id: s.inputs["availabilityZone"] for s in run.of_type(SUBNET) if s.inputs["tags"]["tier"] == "public"}
    nat_azs = [public.get(n.inputs["subnetId"]) for n in nats]
    assert None not in nat_azs, "every NAT sits in a public subnet"
    assert len(set(nat_azs)) == len(nats), "no two NATs share an AZ"
    private_routes = [r for r in run.of_type("aws:ec2/route:Route") if "private" in r.name]
    assert len(private_routes) == net.az_count
    assert all(r.inputs["destinationCidrBlock"] == "0.0.0.0/0" for r in private_routes)
    # per_az: every AZ egresses through its own NAT; single: one NAT for all
    targets = {r.inputs["natGatewayId"] for r in private_routes}
    assert targets == {n.id for n in nats}
    public_route = run.one("aws:ec2/route:Route", "public-default")
    assert public_route.inputs["gatewayId"] == run.one("aws:ec2/internetGateway:InternetGateway").id


def test_flow_logs_and_s3_endpoint(env: Environment, run: Run) -> None:
    flow = run.one("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"
    group = run.one("aws:cloudwatch/logGroup:LogGroup", "flow-logs")
    assert flow.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == aws(env).log_retention_days
    endpoint = run.one("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{aws(env).region}.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert len(endpoint.inputs["routeTableIds"]) == aws(env).network.az_count


SEED_001_NETWORK = {"vpc_cidr": "10.0.0.0/16", "az_count": 2,
                    "public_subnet_cidrs": ["10.0.1.0/24", "10.0.2.0/24"],
                    "private_subnet_cidrs": ["10.0.10.0/24", "10.0.11.0/24"]}


def test_seed_001_subnets_are_created_as_written(run_with: Callable[..., Run]) -> None:
    run = run_with("staging", {"aws": {"network": SEED_001_NETWORK}})
    created = {(s.inputs["tags"]["tier"], s.inputs["availabilityZone"], s.inputs["cidrBlock"])
               for s in run.of_type(SUBNET)}
    azs = sorted({az for _, az, _ in created})
    assert len(azs) == 2
    assert created == {("public", azs[0], "10.0.1.0/24"), ("public", azs[1], "10.0.2.0/24"),
                       ("private", azs[0], "10.0.10.0/24"), ("private", azs[1], "10.0.11.0/24")}
    # The NAT sits in the first public subnet; the nodes in the seed's private subnets.
    cidr_of = {s.id: s.inputs["cidrBlock"] for s in run.of_type(SUBNET)}
    assert [cidr_of[n.inputs["subnetId"]] for n in run.of_type("aws:ec2/natGateway:NatGateway")] == ["10.0.1.0/24"]
    for group in run.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert sorted(cidr_of[i] for i in group.inputs["subnetIds"]) == ["10.0.10.0/24", "10.0.11.0/24"]
