"""Apply an environment's rendered tree the way Argo CD syncs it, and wait on what it starts.

Order: Applications by their sync wave, then each app's objects by wave (namespaces first,
HPA/PDB last), server-side applied with one field manager. Objects of CRDs the cluster does
not serve (Prometheus operator's ServiceMonitor) are skipped and reported, as Argo CD's
SkipDryRunOnMissingResource would leave them out of sync.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
from lightkube import ApiError, Client
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim

from apps.waiting import wait_for
from argocd.render import RenderedObject, RenderedTree
from harness.clusters.errors import DeployError
from harness.clusters.kube import FIELD_MANAGER, apply_manifest
from infra.kube_api import found, get_or_none

TRANSIENT = (httpx2.HTTPError,)


@dataclass
class Applied:
    objects: list[RenderedObject] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # ref -> why

    @property
    def namespaces(self) -> list[str]:
        return sorted({o.namespace for o in self.objects if o.namespace} | {o.name for o in self.objects if o.kind == "Namespace"})

    def of_kind(self, kind: str) -> list[RenderedObject]:
        return [o for o in self.objects if o.kind == kind]


def apply_order(tree: RenderedTree) -> list[RenderedObject]:
    """Application wave, then object wave, then path: the order an app-of-apps sync reaches objects."""
    app_waves = {
        o.path.removeprefix("applications/").removesuffix(".yaml"): o.wave
        for o in tree.objects
        if o.app == "argocd" and o.path.startswith("applications/")
    }
    return sorted(tree.app_objects(), key=lambda o: (app_waves.get(o.app, 0), o.wave, o.path))


def served_crd_groups(client: Client) -> set[str]:
    return {crd.spec.group for crd in client.list(CustomResourceDefinition)}


def apply_tree(client: Client, tree: RenderedTree, *, wait_claims: bool = False) -> Applied:
    """Server-side apply every synced workload object of `tree`; DeployError names the refused one.

    wait_claims: like Argo CD's wave health, let a wave's PersistentVolumeClaims bind before the
    next wave (use where volumes bind at once, e.g. the static volumes of simulated clusters).
    """
    groups = served_crd_groups(client)
    if groups:
        load_in_cluster_generic_resources(client)
    applied = Applied()
    ordered = apply_order(tree)
    for index, obj in enumerate(ordered):
        if obj.requires_crd and obj.requires_crd not in groups:
            applied.skipped[obj.ref] = f"the cluster serves no {obj.requires_crd} CRD"
            continue
        apply_object(client, obj)
        applied.objects.append(obj)
        wave_ends = index + 1 == len(ordered) or (ordered[index + 1].app, ordered[index + 1].wave) != (obj.app, obj.wave)
        if wait_claims and wave_ends:
            for claim in [o for o in applied.objects if o.kind == "PersistentVolumeClaim" and (o.app, o.wave) == (obj.app, obj.wave)]:
                wait_claim_bound(client, claim.name, claim.namespace or "default")
    return applied


def wait_claim_bound(client: Client, name: str, namespace: str, *, timeout: float = 60) -> PersistentVolumeClaim:
    def bound() -> PersistentVolumeClaim | None:
        claim = client.get(PersistentVolumeClaim, name, namespace=namespace)
        return claim if claim.status and claim.status.phase == "Bound" else None

    return wait_for(bound, what=f"PersistentVolumeClaim {namespace}/{name} Bound", timeout=timeout, interval=0.5, transient=TRANSIENT)


def apply_object(client: Client, obj: RenderedObject) -> dict[str, Any]:
    try:
        return apply_manifest(client, obj.manifest)
    except ApiError as e:
        raise DeployError(ref=obj.ref, path=obj.path, status=e.status.code or 0, reason=e.status.message or str(e)) from e


def static_volumes(client: Client, tree: RenderedTree) -> list[str]:
    """A pre-bound PersistentVolume per claim of `tree`, for clusters with no volume provisioner
    (simulated nodes): the claim binds as it would to a CSI volume, so its pods can schedule."""
    created = []
    for obj in tree.app_objects():
        if obj.kind != "PersistentVolumeClaim":
            continue
        spec = obj.manifest["spec"]
        name = f"mlops-{obj.namespace}-{obj.name}"
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.get("storageClassName") or "",
                # Never mounted: pods on simulated nodes do not run.
                "hostPath": {"path": f"/nonexistent/mlops/{obj.namespace}/{obj.name}"},
                "claimRef": {"namespace": obj.namespace, "name": obj.name},
            },
        }
        _drop_released(client, name)
        apply_manifest(client, volume)
        created.append(name)
    return created


def _drop_released(client: Client, name: str) -> None:
    """A volume whose claim was deleted (an app pruned, a stack destroyed) stays bound to that
    claim's uid, so a new claim of the same name could never bind it: delete it first."""
    pv = get_or_none(client, PersistentVolume, name)
    if pv is None:
        return
    if pv.status is None or pv.status.phase not in ("Released", "Failed"):
        return
    client.delete(PersistentVolume, name)

    wait_for(lambda: not found(client, PersistentVolume, name), what=f"released PersistentVolume {name} deleted",
             timeout=60, interval=0.3)


# ---------------------------------------------------------------- waits


def _condition(obj: Any, kind: str) -> Any:
    for c in (obj.status.conditions if obj.status else None) or []:
        if c.type == kind:
            return c
    return None


def deployment_available(client: Client, name: str, namespace: str) -> Deployment | None:
    dep = client.get(Deployment, name, namespace=namespace)
    wanted = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
    status = dep.status
    available = _condition(dep, "Available")
    if (
        status
        and available is not None
        and available.status == "True"
        and (status.availableReplicas or 0) >= wanted
        and (status.updatedReplicas or 0) >= wanted
        and (status.observedGeneration or 0) >= ((dep.metadata.generation if dep.metadata else None) or 0)
    ):
        return dep
    return None


def wait_deployment_available(client: Client, name: str, namespace: str, *, timeout: float = 120) -> Deployment:
    def describe() -> str:
        dep = client.get(Deployment, name, namespace=namespace)
        return f"status: {dep.status.to_dict() if dep.status else None}"

    return wait_for(
        lambda: deployment_available(client, name, namespace),
        what=f"Deployment {namespace}/{name} available",
        timeout=timeout,
        interval=0.5,
        transient=TRANSIENT,
        describe=describe,
        hint="pending pods usually mean no node fits (resources, nodeSelector, taints, affinity): read the events",
    )


class JobFailedError(DeployError):
    pass


def job_complete(client: Client, name: str, namespace: str) -> Job | None:
    job = client.get(Job, name, namespace=namespace)
    failed = _condition(job, "Failed")
    if failed is not None and failed.status == "True":
        raise JobFailedError(ref=f"Job {namespace}/{name}", path="-", status=0, reason=f"{failed.reason}: {failed.message}")
    complete = _condition(job, "Complete")
    return job if complete is not None and complete.status == "True" else None


def wait_job_complete(client: Client, name: str, namespace: str, *, timeout: float = 180) -> Job:
    def describe() -> str:
        job = client.get(Job, name, namespace=namespace)
        return f"status: {job.status.to_dict() if job.status else None}"

    return wait_for(
        lambda: job_complete(client, name, namespace),
        what=f"Job {namespace}/{name} complete",
        timeout=timeout,
        interval=0.5,
        transient=TRANSIENT,
        describe=describe,
    )


def wait_cronjob_scheduled(client: Client, name: str, namespace: str, *, since: dt.datetime, timeout: float = 180) -> CronJob:
    """Until the CronJob controller has scheduled a run at or after `since` (status.lastScheduleTime)."""

    def scheduled() -> CronJob | None:
        cron = client.get(CronJob, name, namespace=namespace)
        last = cron.status.lastScheduleTime if cron.status else None
        return cron if last is not None and last >= since else None

    return wait_for(
        scheduled, what=f"CronJob {namespace}/{name} scheduled after {since:%H:%M:%S}", timeout=timeout, interval=1.0,
        transient=TRANSIENT,
    )


def trigger_cronjob(client: Client, name: str, namespace: str, *, job_name: str) -> Job:
    """What `kubectl create job --from=cronjob/<name>` does: a Job from the template, owned by the CronJob."""
    cron = client.get(CronJob, name, namespace=namespace)
    assert cron.spec and cron.metadata
    template = cron.spec.jobTemplate.to_dict()
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": namespace,
            "labels": (template.get("metadata") or {}).get("labels", {}),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "CronJob", "name": name, "uid": cron.metadata.uid, "controller": True}
            ],
        },
        "spec": template["spec"],
    }
    # lightkube annotates from_dict as returning its DictMixin base, not the class it is called on.
    return client.create(cast(Job, Job.from_dict(job)))
