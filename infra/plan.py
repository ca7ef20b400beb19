"""The offline plan: the program for one environment run under Pulumi's mocks, summarised
as a resource tree with counts per type and the inputs a reviewer checks (CIDRs, instance
types, scaling, taints, chart versions, policies' reach), and the platform add-ons: each
with its pinned version and the IAM role the program gives it, or why it is off.

    >>> from environments import load_environment
    >>> report = build_report(load_environment("prod"))
    >>> report.counts["aws:ec2/natGateway:NatGateway"]
    3
    >>> next(a.role for a in report.addons if a.name == "cluster-autoscaler")
    'ml-inference-prod-cluster-cluster-autoscaler'
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from apps.addons import metrics_server
from apps.addons.charts import CHARTS
from environments import Environment
from infra import guardrails
from infra.identity import role_name
from infra.mocks import Recorded, Run, run_program

HIDDEN_OUTPUTS = {"kubeconfig"}
NO_AWS = "no AWS access"


class PlannedResource(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    name: str
    parent: str | None
    summary: str


class PlannedAddon(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    # Who installs it: Argo CD from the GitOps tree, or EKS (a managed add-on Pulumi configures).
    installed_by: str
    enabled: bool
    # The IAM role the program gives it, or NO_AWS.
    role: str
    note: str = ""


class PlanReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    env: str
    region: str | None
    cluster: str | None
    seconds: float
    resources: list[PlannedResource]
    counts: dict[str, int]
    outputs: dict[str, Any]
    relaxed: list[str]
    addons: list[PlannedAddon] = []


def _short(typ: str) -> str:
    """'aws:ec2/subnet:Subnet' -> 'aws:Subnet'; components keep their token."""
    if typ.startswith("mlops:"):
        return typ
    pkg, _, rest = typ.partition(":")
    return f"{pkg}:{rest.rsplit(':', 1)[-1]}"


def _scaling(i: dict[str, Any]) -> str:
    s = i.get("scalingConfig", {})
    return f"min {int(s.get('minSize', 0))} / desired {int(s.get('desiredSize', 0))} / max {int(s.get('maxSize', 0))}"


def summarise(r: Recorded, names: dict[str, str] | None = None) -> str:
    """The inputs a reviewer reads for this resource type ('' when nothing stands out).

    names: resource id -> resource name, to show what a reference points at.
    """
    i, t, names = r.inputs, r.type, names or {}
    tags = i.get("tags") or {}
    if t == "aws:ec2/vpc:Vpc":
        return f"cidr {i.get('cidrBlock')}"
    if t == "aws:ec2/subnet:Subnet":
        return f"{tags.get('tier', '?'):7} {i.get('cidrBlock')}  {i.get('availabilityZone')}"
    if t == "aws:ec2/natGateway:NatGateway":
        return f"in {names.get(i.get('subnetId', ''), '?')}"
    if t == "aws:ec2/route:Route":
        target = i.get("gatewayId") or i.get("natGatewayId") or ""
        return f"{i.get('destinationCidrBlock')} -> {names.get(target, '?')}"
    if t == "aws:ec2/flowLog:FlowLog":
        return f"traffic {i.get('trafficType')} -> {i.get('logDestinationType')}"
    if t == "aws:cloudwatch/logGroup:LogGroup":
        return f"{i.get('name')}  retention {int(i.get('retentionInDays', 0))}d"
    if t == "eks:index:Cluster":
        endpoint = "public " + ",".join(i.get("publicAccessCidrs") or []) if i.get("endpointPublicAccess") else "private"
        return (f"k8s {i.get('version')}  endpoint {endpoint}  auth {i.get('authenticationMode')}  "
                f"logs {','.join(i.get('enabledClusterLogTypes') or [])}  secrets KMS "
                f"{'on' if i.get('encryptionConfigKeyArn') else 'OFF'}  deletion protection "
                f"{'on' if i.get('deletionProtection') else 'off'}")
    if t == "aws:eks/nodeGroup:NodeGroup":
        taints = ", ".join(f"{x['key']}={x.get('value', '')}:{x['effect']}" for x in i.get("taints") or []) or "none"
        labels = ", ".join(f"{k}={v}" for k, v in sorted((i.get("labels") or {}).items())) or "none"
        return (f"{','.join(i.get('instanceTypes') or [])} {i.get('capacityType')} {i.get('amiType')}  {_scaling(i)}  "
                f"taints {taints}  labels {labels}"
                + ("  (desired size left to the autoscaler)" if "scalingConfig.desiredSize" in r.ignore_changes else ""))
    if t == "aws:eks/addon:Addon":
        return " ".join(str(x) for x in (i.get("addonName"), i.get("configurationValues")) if x)
    if t == "aws:efs/fileSystem:FileSystem":
        ia = next((p["transitionToIa"] for p in i.get("lifecyclePolicies") or [] if "transitionToIa" in p), "never")
        return (f"{i.get('performanceMode')} / {i.get('throughputMode')}  KMS {'on' if i.get('kmsKeyId') else 'OFF'}  "
                f"to IA {ia}")
    if t == "aws:efs/backupPolicy:BackupPolicy":
        return f"backups {(i.get('backupPolicy') or {}).get('status')}"
    if t == "aws:efs/mountTarget:MountTarget":
        return f"in {names.get(i.get('subnetId', ''), '?')}"
    if t == "aws:ec2/securityGroup:SecurityGroup":
        rules = [f"{r.get('protocol')}/{int(r.get('fromPort', 0))} from {','.join(r.get('securityGroups') or [])}"
                 for r in i.get("ingress") or []]
        return f"{i.get('name')}  ingress " + ("; ".join(rules) or "none")
    if t == "aws:secretsmanager/secret:Secret":
        return f"{i.get('name')}  (value put by an operator)"
    if t == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        return str(i.get("policyArn", "")).rsplit("/", 1)[-1]
    if t == "kubernetes:helm.sh/v3:Release":
        return f"{i.get('chart')} {i.get('version')} in {i.get('namespace')}"
    if t == "aws:iam/role:Role":
        return str(i.get("name") or i.get("description") or "")
    if t == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
        return f"{i.get('namespace')}/{i.get('serviceAccount')}"
    if t == "aws:ecr/repository:Repository":
        scan = (i.get("imageScanningConfiguration") or {}).get("scanOnPush")
        return f"{i.get('name')}  tags {i.get('imageTagMutability')}  scan on push {'on' if scan else 'off'}"
    if t == "aws:s3/bucket:Bucket":
        return str(i.get("bucket"))
    if t == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
        rule = (i.get("rules") or [{}])[0]
        current = rule.get("expiration", {}).get("days")
        older = rule.get("noncurrentVersionExpiration", {}).get("noncurrentDays")
        return (f"objects {int(current)}d, " if current else "objects kept, ") + f"old versions {int(older or 0)}d"
    if t == "aws:kms/key:Key":
        return f"rotation {'on' if i.get('enableKeyRotation') else 'OFF'}"
    if t == "pulumi:providers:aws":
        # Provider inputs arrive JSON-encoded, as the engine passes provider configuration.
        raw = i.get("defaultTags") or {}
        default = (json.loads(raw) if isinstance(raw, str) else raw).get("tags") or {}
        return f"region {i.get('region')}  default tags " + ", ".join(f"{k}={v}" for k, v in sorted(default.items()))
    if t == "pulumi-python:dynamic:Resource":
        return f"publish {len(i.get('files') or {})} files to {i.get('repo_url')} [{i.get('branch')}] {i.get('path')}"
    if t.startswith("kubernetes:argoproj.io"):
        return str((i.get("metadata") or {}).get("name", ""))
    return ""


def _off(field: str) -> str:
    return f"off: addons.{field}.enabled is false"


def planned_addons(env: Environment, run: Run) -> list[PlannedAddon]:
    """Every add-on of the environment, in its file's order; roles as the program declared them."""
    assert env.aws is not None
    cluster = env.aws.cluster.name
    declared = {str(r.inputs.get("name")) for r in run.of_type("aws:iam/role:Role")}

    def role(addon: str) -> str:
        name = role_name(cluster, addon)
        return name if name in declared else NO_AWS

    a = env.addons
    found = [
        PlannedAddon(name=metrics_server.APP, version=a.metrics_server.version, installed_by="argocd",
                     enabled=a.metrics_server.enabled, role=NO_AWS,
                     note="" if a.metrics_server.enabled else _off("metrics_server")),
        PlannedAddon(name="prometheus-operator-crds", version=a.prometheus_crds.version, installed_by="argocd",
                     enabled=a.prometheus_crds.enabled, role=NO_AWS,
                     note="" if a.prometheus_crds.enabled else _off("prometheus_crds")),
    ]
    fields = {id(getattr(a, f)): f for f in type(a).model_fields}
    for chart in CHARTS:
        settings, on = chart.settings(env), chart.enabled(env)
        note = "" if on else _off(fields[id(settings)]) if not settings.enabled else "off: nothing here needs it"
        found.append(PlannedAddon(name=chart.name, version=chart.version(env), installed_by="argocd", enabled=on,
                                  role=role(chart.name), note=note))
    # The CNI runs on every node and calls EC2 as the node role (AmazonEKS_CNI_Policy).
    found.append(PlannedAddon(name="vpc-cni", version="EKS default", installed_by="eks", enabled=True,
                              role="the node role", note=f"network policy {'on' if a.vpc_cni.network_policy else 'OFF'}"))
    return found


def build_report(env: Environment) -> PlanReport:
    started = time.perf_counter()
    if env.aws is None:
        # Nothing in the cloud; the Kubernetes half needs a cluster and is previewed for real.
        return PlanReport(env=env.name, region=None, cluster=None, seconds=0.0, resources=[], counts={},
                          outputs={}, relaxed=[])
    run = run_program(env)
    seconds = time.perf_counter() - started
    names = {r.id: r.name for r in run.resources if r.id}
    resources = [PlannedResource(type=r.type, name=r.name, parent=r.parent, summary=summarise(r, names))
                 for r in run.resources]
    counts = dict(sorted(run.counts().items()))
    outputs = {k: v for k, v in run.outputs.items() if k not in HIDDEN_OUTPUTS}
    return PlanReport(env=env.name, region=env.aws.region if env.aws else None,
                      cluster=env.aws.cluster.name if env.aws else None, seconds=round(seconds, 2),
                      resources=resources, counts=counts, outputs=outputs,
                      relaxed=[str(v) for v in guardrails.relaxed(env)], addons=planned_addons(env, run))


def render_report(report: PlanReport) -> RenderableType:
    if not report.resources:
        return Text(f"{report.env}: no cloud resources (the environment has no aws block); its Kubernetes half "
                    f"is previewed for real on a local cluster: mlops stack preview {report.env}", style="yellow")
    custom = sum(n for t, n in report.counts.items() if not t.startswith("mlops:"))
    head = Text.assemble((f"{report.env}", "bold"), f"  {report.region}  cluster {report.cluster}  ",
                         (f"{custom} resources", "bold"), f" in {len(report.resources) - custom} components  ",
                         (f"(offline, Pulumi mocks, {report.seconds:.1f}s)", "dim"))
    children: dict[str | None, list[PlannedResource]] = {}
    for r in report.resources:
        children.setdefault(r.parent, []).append(r)
    tree = Tree(head)

    def add(node: Tree, parent: str | None) -> None:
        for r in children.get(parent, []):
            label = Text.assemble((_short(r.type), "cyan" if r.type.startswith("mlops:") else "green"), f" {r.name}")
            if r.summary:
                label.append(f"  {r.summary}", style="dim")
            add(node.add(label), r.name)

    add(tree, None)
    counts = Table("type", "count", title="resources per type", title_justify="left")
    for typ, n in report.counts.items():
        if not typ.startswith("mlops:"):
            counts.add_row(typ, str(n))
    addons = Table(title="add-ons", title_justify="left")
    # Names and roles are what a reviewer reads: folded onto a second line, never cut short.
    for header in ("add-on", "version", "installed by", "IAM role", ""):
        addons.add_column(header, overflow="fold")
    for a in report.addons:
        style = None if a.enabled else "dim"
        addons.add_row(a.name, a.version, a.installed_by, a.role if a.enabled else "-", a.note, style=style)
    parts: list[RenderableType] = [tree, counts, addons]
    if report.relaxed:
        parts.append(Text("relaxed here, refused in production:\n" + "\n".join(f"  - {v}" for v in report.relaxed),
                          style="yellow"))
    return Group(*parts)
