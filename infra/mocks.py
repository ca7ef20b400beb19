"""Run the real Pulumi program in-process under Pulumi's own mocks: no cloud, no
credentials, no CLI. Used by `mlops infra plan` and by the infra tests.

The mocks answer like AWS would (ARNs, ECR URLs, AZ names, an EKS kubeconfig) so the
program's derived values (role ARNs in the rendered tree, the image registry) are
realistic; every resource is recorded with its inputs, parent and options.

    >>> from environments import load_environment
    >>> run = run_program(load_environment("dev"))
    >>> run.count("aws:eks/nodeGroup:NodeGroup")
    2
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.settings import SETTINGS, get_root_resource, set_root_resource
from pulumi.runtime.stack import register_stack_transformation, run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from environments import Environment

ACCOUNT_ID = "123456789012"
DYNAMIC = "pulumi-python:dynamic:Resource"


@dataclass
class Recorded:
    """One resource as the program declared it."""

    type: str
    name: str
    parent: str | None = None
    id: str | None = None
    custom: bool = True
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None
    ignore_changes: list[str] = field(default_factory=list)
    retain_on_delete: bool = False
    depends_on: list[str] = field(default_factory=list)
    # (former name, former parent's name) of each alias: where a stack may already hold it.
    aliases: list[tuple[str | None, str | None]] = field(default_factory=list)


@dataclass
class Run:
    env: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    # URN -> state of the resources the program reads by reference (pulumi-eks's aws.eks.Cluster).
    references: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == typ]

    def count(self, typ: str) -> int:
        return len(self.of_type(typ))

    def one(self, typ: str, name_suffix: str = "") -> Recorded:
        found = [r for r in self.of_type(typ) if r.name.endswith(name_suffix)]
        if len(found) != 1:
            raise LookupError(f"expected one {typ} named *{name_suffix}, found {[r.name for r in found]}")
        return found[0]

    def by_name(self, name: str) -> Recorded:
        return next(r for r in self.resources if r.name == name)

    def counts(self) -> Counter[str]:
        return Counter(r.type for r in self.resources)


def _hex(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:17]


class PlatformMocks(Mocks):
    """Answers as AWS, EKS and Kubernetes would, deterministically."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.created: dict[tuple[str, str], MockResourceArgs] = {}
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}
        self.ids: dict[tuple[str, str], str] = {}
        self.references: dict[str, dict[str, Any]] = {}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {"names": [f"{self.region}{c}" for c in letters],
                    "zoneIds": [f"usw2-az{i + 1}" for i in range(len(letters))], "id": self.region}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/deployer",
                    "userId": "AIDAMOCK", "id": ACCOUNT_ID}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        return {}, []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        outs = {**inputs, **self._outputs(args.typ, args.name, inputs)}
        rid = outs.pop("__id", f"{args.name}-{_hex(args.typ, args.name)[:8]}")
        self.created[(args.typ, args.name)] = args
        self.outputs[(args.typ, args.name)] = outs
        self.ids[(args.typ, args.name)] = rid
        return rid, outs

    def _outputs(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        acct, region, h = ACCOUNT_ID, self.region, _hex(typ, name)
        prefix = {"aws:ec2/vpc:Vpc": "vpc", "aws:ec2/subnet:Subnet": "subnet", "aws:ec2/natGateway:NatGateway": "nat",
                  "aws:ec2/internetGateway:InternetGateway": "igw", "aws:ec2/routeTable:RouteTable": "rtb",
                  "aws:ec2/eip:Eip": "eipalloc", "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
                  "aws:ec2/flowLog:FlowLog": "fl", "aws:ec2/securityGroup:SecurityGroup": "sg",
                  "aws:efs/mountTarget:MountTarget": "fsmt"}.get(typ)
        if prefix:
            return {"__id": f"{prefix}-{h}", "arn": f"arn:aws:ec2:{region}:{acct}:{prefix}/{prefix}-{h}"}
        if typ == "aws:iam/role:Role":
            role = inputs.get("name") or f"{name}-{h[:7]}"
            return {"name": role, "__id": role, "arn": f"arn:aws:iam::{acct}:role/{role}"}
        if typ == "aws:ecr/repository:Repository":
            repo = inputs["name"]
            return {"arn": f"arn:aws:ecr:{region}:{acct}:repository/{repo}",
                    "repositoryUrl": f"{acct}.dkr.ecr.{region}.amazonaws.com/{repo}", "registryId": acct}
        if typ == "aws:s3/bucket:Bucket":
            return {"__id": inputs["bucket"], "arn": f"arn:aws:s3:::{inputs['bucket']}"}
        if typ == "aws:kms/key:Key":
            return {"keyId": h, "arn": f"arn:aws:kms:{region}:{acct}:key/{h}"}
        if typ == "aws:efs/fileSystem:FileSystem":
            return {"__id": f"fs-{h}", "arn": f"arn:aws:elasticfilesystem:{region}:{acct}:file-system/fs-{h}"}
        if typ == "aws:secretsmanager/secret:Secret":
            # Secrets Manager appends six random characters to the name.
            arn = f"arn:aws:secretsmanager:{region}:{acct}:secret:{inputs['name']}-{h[:6]}"
            return {"__id": arn, "arn": arn}
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            return {"arn": f"arn:aws:logs:{region}:{acct}:log-group:{inputs['name']}"}
        if typ == "aws:eks/nodeGroup:NodeGroup":
            return {"arn": f"arn:aws:eks:{region}:{acct}:nodegroup/{inputs['clusterName']}/{inputs['nodeGroupName']}"}
        if typ == "eks:index:Cluster":
            issuer = f"oidc.eks.{region}.amazonaws.com/id/{h.upper()}"
            server = f"https://{h.upper()}.gr7.{region}.eks.amazonaws.com"
            kubeconfig = {"apiVersion": "v1", "kind": "Config",
                          "clusters": [{"name": inputs["name"], "cluster": {"server": server}}]}
            return {"kubeconfigJson": json.dumps(kubeconfig), "kubeconfig": kubeconfig, "oidcIssuer": issuer,
                    "oidcProviderUrl": f"https://{issuer}",
                    "oidcProviderArn": f"arn:aws:iam::{acct}:oidc-provider/{issuer}",
                    "eksCluster": self._eks_cluster(name, inputs["name"])}
        if typ == DYNAMIC:
            # The publish step runs only in a real `pulumi up`; the plan shows what it would send.
            return {"commit": "(published at pulumi up)"}
        return {"arn": f"arn:aws:mock:{region}:{acct}:{name}"}


    def _eks_cluster(self, name: str, cluster_name: str) -> dict[str, Any]:
        """pulumi-eks hands out the `aws.eks.Cluster` it made as a resource reference: register it with
        the mock engine (as pulumi-eks's child) so the program can read it, as it would from the engine."""
        urn = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::eks:index:Cluster$aws:eks/cluster:Cluster::{name}-eksCluster"
        state = {"name": cluster_name, "arn": f"arn:aws:eks:{self.region}:{ACCOUNT_ID}:cluster/{cluster_name}",
                 "vpcConfig": {"clusterSecurityGroupId": f"sg-{_hex('eks-cluster-sg', name)}"}}
        monitor = SETTINGS.monitor
        assert isinstance(monitor, MockMonitor)
        monitor.resources[urn] = MockMonitor.ResourceRegistration(urn, cluster_name, state)
        self.references[urn] = state
        return {rpc._special_sig_key: rpc._special_resource_sig, "urn": urn, "id": cluster_name}


def pushed_digests() -> dict[str, str]:
    """What `mlops images push` would have set in a stack's config: a digest per app image."""
    from infra.platform import app_images

    return {image: "sha256:" + hashlib.sha256(image.encode()).hexdigest() for image in sorted(set(app_images().values()))}


def run_program(env: Environment, *, project: str | None = None, entry: Callable[[], Any] | None = None,
                config: dict[str, str] | None = None) -> Run:
    """Run `infra.platform.deploy(env)` (or `entry`, as the stack named after `env`) under mocks,
    with stack `config` (default: the images pushed, as `mlops images push` leaves it)."""
    from infra.local import CONFIG, LocalPlatform
    from infra.platform import IMAGE_DIGESTS, PROJECT, MlPlatform, deploy

    pulumi.runtime.set_all_config(
        {f"{CONFIG}:{IMAGE_DIGESTS}": json.dumps(pushed_digests())} if config is None else config)

    mocks = PlatformMocks(env.aws.region if env.aws else "local")
    # A fresh root stack per run: stack transformations (ours included) live on it.
    # pulumi resets the root on None; its annotation names only Resource.
    set_root_resource(None)  # type: ignore[arg-type]
    set_mocks(mocks, project=project or PROJECT, stack=env.name, preview=False)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    order: list[Recorded] = []

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        opts = args.opts
        if opts and opts.urn:
            return None  # a reference to a resource that exists (pulumi-eks's cluster), not one declared
        parent = opts.parent if opts and isinstance(opts.parent, pulumi.Resource) else None
        order.append(Recorded(
            type=args.type_, name=args.name,
            parent=None if parent is None or parent is get_root_resource() else parent._name,
            custom=isinstance(args.resource, pulumi.CustomResource),
            ignore_changes=list(opts.ignore_changes or []) if opts else [],
            retain_on_delete=bool(opts and opts.retain_on_delete),
            depends_on=[d._name for d in (opts.depends_on or []) if isinstance(d, pulumi.Resource)]
            if opts and isinstance(opts.depends_on, list) else [],
            aliases=[(a.name if isinstance(a.name, str) else None,
                      a.parent._name if isinstance(a.parent, pulumi.Resource) else None)
                     for a in (opts.aliases or []) if isinstance(a, pulumi.Alias)] if opts else [],
        ))
        return None

    exports: dict[str, Any] = {}
    secrets: set[str] = set()

    def program() -> Any:
        register_stack_transformation(record)
        platform = entry() if entry else deploy(env)
        if not isinstance(platform, MlPlatform | LocalPlatform):
            return None
        return resolve(platform.outputs)

    async def resolve(outputs: dict[str, Any]) -> None:
        # Inside the run, while the mocked engine still answers.
        exports.update(await pulumi.Output.all(**outputs).future() or {})
        for key, value in outputs.items():
            if await pulumi.Output.from_input(value).is_secret():
                secrets.add(key)

    _sync_await(run_pulumi_func(program))
    for rec in order:
        created = mocks.created.get((rec.type, rec.name))
        if created is not None:
            rec.inputs = dict(created.inputs)
            rec.provider = created.provider or None
            rec.outputs = mocks.outputs[(rec.type, rec.name)]
            rec.id = mocks.ids[(rec.type, rec.name)]
    return Run(env=env.name, resources=order, outputs=exports, secret_outputs=secrets, references=mocks.references)
