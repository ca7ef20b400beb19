"""The destroy order that never leaves `pulumi destroy` facing an unreachable cluster.

Argo CD creates AWS resources Pulumi never sees (load balancers and their ENIs for
`LoadBalancer` Services, volumes for claims). Destroying everything at once can take the
cluster, or the credentials that reach it, away before those are cleaned up: the "cluster
unreachable" trap users of EKS Blueprints hit, whose documented cure is a targeted destroy
in steps (aws-ia/terraform-aws-eks-blueprints#1053, #1114). The steps, with the exact URNs
of this program's resources (computed offline):

1. the apps first, while the add-ons that clean up after them still run: the root app stops
   syncing (or it would recreate them), then each app's Application is deleted, and Argo CD
   cascades to its Ingress, LoadBalancer Service and claims, which the load balancer
   controller and the CSI drivers turn back into deleted load balancers and volumes;
2. the root application alone: Argo CD cascades the deletion of the add-ons;
3. everything else inside the cluster (Argo CD itself);
4. production only: deletion protection off on the cluster itself (buckets, repositories,
   the EFS file system, the API's secret and their keys are retained on delete: the data
   stays in the account);
5. the rest: node groups, cluster, identity, storage, network. The GitOps history stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from argocd import catalog
from argocd.objects import application_name, root_name
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
    argocd = f"kubectl --kubeconfig kubeconfig -n {env.gitops.argocd_namespace}"
    apps = " ".join(application_name(env, a.name) for a in reversed(catalog.enabled_apps(env)))
    steps = [
        Step("Delete the apps while their add-ons still run",
             "Their load balancers and volumes are deleted by the load balancer controller and the CSI drivers, "
             "which must outlive them; the root app stops syncing first, or it would recreate them at once.",
             (f"pulumi stack output --stack {env.name} kubeconfig --show-secrets > kubeconfig",
              f"{argocd} patch applications.argoproj.io {root_name(env)} --type json "
              "-p '[{\"op\": \"remove\", \"path\": \"/spec/syncPolicy/automated\"}]'",
              f"{argocd} delete applications.argoproj.io {apps} --wait --timeout 30m")),
        Step("Delete the root application",
             "Argo CD is still running: the root app's finalizer cascades to the add-ons (and to anything left of "
             "the apps), which Pulumi does not track.",
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
