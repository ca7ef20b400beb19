"""The destroy order that never leaves `pulumi destroy` facing an unreachable cluster.

Argo CD creates AWS resources Pulumi never sees (load balancers and their ENIs for
`LoadBalancer` Services, volumes for claims). Destroying everything at once can take the
cluster, or the credentials that reach it, away before those are cleaned up: the "cluster
unreachable" trap users of EKS Blueprints hit, whose documented cure is a targeted destroy
in steps (aws-ia/terraform-aws-eks-blueprints#1053, #1114). The steps, with the exact URNs
of this program's resources (computed offline):

1. the root application alone: Argo CD, still running, cascades the deletion of every app
   and add-on, and of what they created in AWS (the load balancer controller's load
   balancers, the CSI drivers' volumes and access points);
2. everything else inside the cluster (Argo CD itself);
3. production only: deletion protection off on the cluster itself (buckets, repositories,
   the EFS file system, the API's secret and their keys are retained on delete: the data
   stays in the account);
4. the rest: node groups, cluster, identity, storage, network. The GitOps history stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from environments import Environment
from infra.mocks import Recorded, Run
from infra.platform import PROJECT

ROOT_APP = "kubernetes:argoproj.io/v1alpha1:Application"


@dataclass(frozen=True)
class Step:
    title: str
    why: str
    commands: tuple[str, ...]


def urn(run: Run, resource: Recorded, *, project: str = PROJECT) -> str:
    """The URN the Pulumi engine gives this resource: parent types chained with '$'."""
    by_name = {r.name: r for r in run.resources}
    chain, node = [resource.type], resource
    while node.parent is not None:
        node = by_name[node.parent]
        chain.append(node.type)
    return f"urn:pulumi:{run.env}::{project}::{'$'.join(reversed(chain))}::{resource.name}"


def _destroy(env: str, urns: list[str]) -> str:
    targets = " ".join(f"--target '{u}'" for u in urns)
    return f"pulumi destroy --stack {env} {targets}"


def destroy_steps(env: Environment, run: Run) -> list[Step]:
    in_cluster = [r for r in run.resources if r.custom and r.type.startswith("kubernetes:")]
    roots = [r for r in in_cluster if r.type == ROOT_APP]
    rest = [r for r in in_cluster if r.type != ROOT_APP]
    steps = [
        Step("Delete the root application first",
             "Argo CD is still running: the root app's finalizer cascades to every app and to the load balancers, "
             "ENIs and volumes they created, which Pulumi does not track.",
             (_destroy(env.name, [urn(run, r) for r in roots]),)),
        Step("Remove what runs inside the cluster",
             "Argo CD goes while the API server is reachable and the credentials that reach it still exist.",
             (_destroy(env.name, [urn(run, r) for r in rest]),)),
    ]
    if env.production and env.aws is not None:
        steps.append(Step(
            "Production only: lift deletion protection on purpose",
            "The environment file keeps it on (the guardrails refuse otherwise), so it is turned off on the cluster "
            "itself, in the open, by whoever means to tear production down.",
            (f"aws eks update-cluster-config --region {env.aws.region} --name {env.aws.cluster.name} "
             f"--no-deletion-protection",
             f"pulumi refresh --stack {env.name} --yes"),
        ))
    steps.append(Step(
        "Destroy the rest",
        "Node groups, cluster, identity, the add-ons' roles, registries, storage and network. The publish step "
        "deletes nothing: the GitOps repository keeps its history. In production the buckets, repositories, the "
        "EFS file system, the API's secret and their keys are retained (left in the account, dropped from the "
        "stack).",
        (f"pulumi destroy --stack {env.name}",),
    ))
    return steps
