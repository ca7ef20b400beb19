"""Network: VPC, public and private subnets per AZ, NAT per strategy, routes, flow logs,
and the S3 gateway endpoint.

Subnet math is a pure function of the environment's network block: an explicit layout
(`public_subnet_cidrs`, `private_subnet_cidrs`) is taken as written; otherwise the VPC is cut
into slots of `subnet_prefix()`; public subnets take the lower half, private the upper half,
one of each per AZ, so adding an AZ never moves an existing subnet.

    >>> from environments import load_environment
    >>> [s.cidr for s in subnet_plan(load_environment("dev").aws.network)]
    ['10.10.0.0/20', '10.10.16.0/20', '10.10.128.0/20', '10.10.144.0/20']
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from environments.model import Network as NetworkSpec
from infra import policies

TOKEN = "mlops:infra:Network"
Tier = Literal["public", "private"]


@dataclass(frozen=True)
class SubnetSpec:
    tier: Tier
    az_index: int
    cidr: str


def subnet_plan(network: NetworkSpec) -> list[SubnetSpec]:
    """The environment's explicit layout if it sets one (validated by the model), else public
    subnets in the lower half of the VPC, private in the upper half, one per AZ and tier."""
    if network.public_subnet_cidrs is not None and network.private_subnet_cidrs is not None:
        public, private = network.public_subnet_cidrs, network.private_subnet_cidrs
    else:
        slots = [str(s) for s in ipaddress.IPv4Network(network.vpc_cidr).subnets(new_prefix=network.subnet_prefix())]
        half = len(slots) // 2
        public, private = slots[:network.az_count], slots[half:half + network.az_count]
    return [SubnetSpec("public", i, cidr) for i, cidr in enumerate(public)] + [
        SubnetSpec("private", i, cidr) for i, cidr in enumerate(private)
    ]


def nat_count(nat: str, az_count: int) -> int:
    return {"none": 0, "single": 1, "per_az": az_count}[nat]


@dataclass(frozen=True)
class NetworkArgs:
    cluster_name: str
    region: str
    vpc_cidr: str
    az_count: int
    nat: Literal["none", "single", "per_az"]
    subnets: tuple[SubnetSpec, ...]
    flow_logs: bool
    log_retention_days: int
    account_id: pulumi.Input[str]

    @classmethod
    def from_spec(cls, *, cluster_name: str, region: str, network: NetworkSpec, log_retention_days: int,
                  account_id: pulumi.Input[str]) -> NetworkArgs:
        return cls(cluster_name=cluster_name, region=region, vpc_cidr=network.vpc_cidr, az_count=network.az_count,
                   nat=network.nat, subnets=tuple(subnet_plan(network)), flow_logs=network.flow_logs,
                   log_retention_days=log_retention_days, account_id=account_id)


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    private_route_table_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        azs = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": f"{args.cluster_name}-vpc"}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{args.cluster_name}-igw"},
                                      opts=child)

        cluster_tag = f"kubernetes.io/cluster/{args.cluster_name}"
        subnets: dict[tuple[Tier, int], aws.ec2.Subnet] = {}
        for spec in args.subnets:
            # The role tags let the AWS load balancer controller find where to put LBs.
            role = "kubernetes.io/role/elb" if spec.tier == "public" else "kubernetes.io/role/internal-elb"
            subnets[(spec.tier, spec.az_index)] = aws.ec2.Subnet(
                f"{name}-{spec.tier}-{spec.az_index}",
                vpc_id=vpc.id,
                cidr_block=spec.cidr,
                availability_zone=azs.names[spec.az_index],
                map_public_ip_on_launch=False,
                tags={"Name": f"{args.cluster_name}-{spec.tier}-{spec.az_index}", role: "1", cluster_tag: "shared",
                      "tier": spec.tier},
                opts=child,
            )
        public = [subnets[("public", i)] for i in range(args.az_count)]
        private = [subnets[("private", i)] for i in range(args.az_count)]

        public_rt = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id,
                                       tags={"Name": f"{args.cluster_name}-public"}, opts=child)
        aws.ec2.Route(f"{name}-public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0",
                      gateway_id=igw.id, opts=child)
        for i, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}-rta", subnet_id=subnet.id,
                                          route_table_id=public_rt.id, opts=child)

        nats = []
        for i in range(nat_count(args.nat, args.az_count)):
            eip = aws.ec2.Eip(f"{name}-nat-{i}-eip", domain="vpc", tags={"Name": f"{args.cluster_name}-nat-{i}"},
                              opts=child)
            nats.append(aws.ec2.NatGateway(
                f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=public[i].id,
                tags={"Name": f"{args.cluster_name}-nat-{i}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            ))

        private_rts = []
        for i, subnet in enumerate(private):
            rt = aws.ec2.RouteTable(f"{name}-private-{i}-rt", vpc_id=vpc.id,
                                    tags={"Name": f"{args.cluster_name}-private-{i}"}, opts=child)
            if nats:
                # per_az: each AZ egresses through its own NAT; single: all through the first.
                nat = nats[i] if args.nat == "per_az" else nats[0]
                aws.ec2.Route(f"{name}-private-{i}-default", route_table_id=rt.id,
                              destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}-rta", subnet_id=subnet.id, route_table_id=rt.id,
                                          opts=child)
            private_rts.append(rt)

        # S3 traffic (models, data, ECR layers) stays off the NAT: cheaper and private.
        aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
                            vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_rts],
                            tags={"Name": f"{args.cluster_name}-s3"}, opts=child)

        if args.flow_logs:
            self._flow_logs(name, args, vpc)

        self.vpc_id = vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.private_route_table_ids = pulumi.Output.all(*[rt.id for rt in private_rts])
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
        })

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", name=f"/aws/vpc/{args.cluster_name}/flow-logs",
                                        retention_in_days=args.log_retention_days, opts=child)
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=policies.as_json(policies.service_trust(
                "vpc-flow-logs.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": args.account_id}},
            )),
            opts=child,
        )
        aws.iam.RolePolicy(f"{name}-flow-logs-write", role=role.id,
                           policy=policies.as_json(policies.flow_logs_write(group.arn)), opts=child)
        aws.ec2.FlowLog(f"{name}-flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                        log_destination=group.arn, iam_role_arn=role.arn, max_aggregation_interval=60,
                        tags={"Name": f"{args.cluster_name}-flow-log"}, opts=child)
