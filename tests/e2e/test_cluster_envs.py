"""The rendered trees of `local` and `prod` on a real API server, with nodes shaped like each env.

Every object is accepted, Pod Security "restricted" is enforced, Deployments become available
on nodes that fit them, GPU work lands only on GPU nodes, HPA/PDB carry the env's numbers, the
CronJobs and the backfill Indexed Job run through the real Job controller.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable

import pytest
from lightkube import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import Namespace, Node, Pod
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import CascadeType

from apps.batch import workload as batch
from apps.waiting import wait_for
from argocd.render import OPTIONAL_CRD_KINDS, RenderedObject
from harness.clusters.deploy import (
    apply_manifest,
    trigger_cronjob,
    wait_cronjob_scheduled,
    wait_deployment_available,
    wait_job_complete,
)
from harness.clusters.kube import to_resource
from harness.clusters.nodes import GPU_RESOURCE
from harness.clusters.plugin import DeployedEnv

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module", params=["local", "prod"])
def deployed(request: pytest.FixtureRequest, deployed_env: Callable[[str], DeployedEnv]) -> DeployedEnv:
    return deployed_env(request.param)


def _pods(deployed: DeployedEnv) -> list[Pod]:
    return [p for ns in deployed.applied.namespaces for p in deployed.client.list(Pod, namespace=ns)]


def _gpus(resources: object) -> int:
    requests = getattr(resources, "requests", None) or {}
    return int(requests.get(GPU_RESOURCE, 0))


def test_every_object_is_accepted_and_served_back(deployed: DeployedEnv) -> None:
    for obj in deployed.applied.objects:
        live = deployed.client.get(type(to_resource(obj.manifest)), obj.name, namespace=obj.namespace)
        assert live.metadata.labels.get("app.kubernetes.io/managed-by") == "mlops-toolkit", obj.ref
    kinds_skipped = {ref.split()[0] for ref in deployed.applied.skipped}
    assert kinds_skipped <= set(OPTIONAL_CRD_KINDS), deployed.applied.skipped
    assert len(deployed.applied.objects) + len(deployed.applied.skipped) == len(deployed.tree.app_objects())


def test_namespaces_enforce_restricted_pod_security(deployed: DeployedEnv) -> None:
    owned = [o.name for o in deployed.tree.app_objects() if o.kind == "Namespace"]  # not kube-system (add-ons)
    assert owned
    for name in owned:
        labels = deployed.client.get(Namespace, name).metadata.labels
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", name


def test_the_api_server_rejects_a_pod_that_violates_pod_security(deployed: DeployedEnv) -> None:
    owned = {o.name for o in deployed.tree.app_objects() if o.kind == "Namespace"}
    dep = next(d for d in deployed.applied.of_kind("Deployment") if d.namespace in owned)  # kube-system is not ours
    template = dep.manifest["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "psa-probe", "namespace": dep.namespace, "labels": {"probe": "psa"}},
        "spec": copy.deepcopy(template["spec"]),
    }
    # The rendered pod itself passes admission (server-side dry run)...
    deployed.client.create(to_resource(pod), dry_run=True)
    # ...the same pod turned privileged is refused by Pod Security admission, not by a schema.
    pod["spec"]["containers"][0]["securityContext"].update({"privileged": True, "allowPrivilegeEscalation": True})
    with pytest.raises(ApiError) as refused:
        deployed.client.create(to_resource(pod), dry_run=True)
    assert refused.value.status.code == 403
    assert 'violates PodSecurity "restricted:' in (refused.value.status.message or "")


def test_deployments_become_available(deployed: DeployedEnv) -> None:
    deployments = deployed.applied.of_kind("Deployment")
    assert deployments
    pods = wait_for(lambda: _scheduling_settled(deployed), what="every Deployment pod placed or refused", timeout=120)
    refused = {
        d.name: [_unschedulable(p) for p in pods if _owned_by(p, d) and not p.spec.nodeName]
        for d in deployments
    }
    refused = {name: reasons for name, reasons in refused.items() if reasons}
    for dep in deployments:
        if dep.name not in refused:
            wait_deployment_available(deployed.client, dep.name, dep.namespace or "default", timeout=60)
    # The environment model refuses sizes that fit no node; this proves it with the real scheduler.
    assert not refused, f"Deployments the scheduler cannot place: {refused}"


def _owned_by(pod: Pod, dep: RenderedObject) -> bool:
    selector = dep.manifest["spec"]["selector"]["matchLabels"]
    return pod.metadata.namespace == dep.namespace and selector.items() <= (pod.metadata.labels or {}).items()


def _unschedulable(pod: Pod) -> str:
    scheduled = next((c for c in (pod.status.conditions or []) if c.type == "PodScheduled"), None)
    return (scheduled.message or "no message") if scheduled else "not scheduled"


def _claims(pod: Pod) -> set[str]:
    return {v.persistentVolumeClaim.claimName for v in (pod.spec.volumes or []) if v.persistentVolumeClaim}


def _scheduling_settled(deployed: DeployedEnv) -> list[Pod] | None:
    """The env's Deployment pods once each is placed or refused by the scheduler (Unschedulable)."""
    pods = [p for p in _pods(deployed) if not (p.metadata.labels or {}).get("job-name") and p.metadata.name != "psa-probe"]
    wanted = sum(
        deployed.client.get(Deployment, d.name, namespace=d.namespace).spec.replicas or 0
        for d in deployed.applied.of_kind("Deployment")
    )
    if len(pods) < wanted:
        return None
    for pod in pods:
        scheduled = next((c for c in (pod.status.conditions or []) if c.type == "PodScheduled"), None) if pod.status else None
        if not pod.spec.nodeName and not (scheduled and scheduled.reason == "Unschedulable"):
            return None
    return pods


def test_gpu_pods_land_only_on_gpu_nodes_and_cpu_pods_never_do(deployed: DeployedEnv) -> None:
    nodes = {n.metadata.name: n for n in deployed.client.list(Node)}
    gpu_nodes = {name for name, n in nodes.items() if int((n.status.allocatable or {}).get(GPU_RESOURCE, "0"))}
    if not gpu_nodes:
        pytest.skip(f"cluster {deployed.cluster.name} has no node with {GPU_RESOURCE} allocatable")
    pods = wait_for(lambda: _scheduling_settled(deployed), what="every Deployment pod placed or refused", timeout=120)
    placed = [p for p in pods if p.spec.nodeName]
    wants_gpu = {p.metadata.name: any(_gpus(c.resources) for c in p.spec.containers) for p in pods}
    assert any(wants_gpu[p.metadata.name] for p in placed), "the env runs GPU work but no GPU pod was placed"
    # A pod sharing a ReadWriteOnce claim with GPU pods must sit on their node (seed 002's volume).
    gpu_claims = {c for p in pods if wants_gpu[p.metadata.name] for c in _claims(p)}
    rwo_claims = {
        o.name for o in deployed.applied.of_kind("PersistentVolumeClaim") if o.manifest["spec"]["accessModes"] == ["ReadWriteOnce"]
    }
    for pod in placed:
        on_gpu = pod.spec.nodeName in gpu_nodes
        if wants_gpu[pod.metadata.name]:
            assert on_gpu, f"GPU pod {pod.metadata.name} placed on CPU node {pod.spec.nodeName}"
        elif on_gpu:
            shared = _claims(pod) & gpu_claims & rwo_claims
            assert shared, f"CPU pod {pod.metadata.name} placed on GPU node {pod.spec.nodeName}"


def test_hpa_and_pdb_carry_the_environments_numbers(deployed: DeployedEnv) -> None:
    api = deployed.env.apps.inference_api
    [hpa_obj] = [o for o in deployed.applied.of_kind("HorizontalPodAutoscaler") if o.app == "inference-api"]
    hpa = deployed.client.get(HorizontalPodAutoscaler, hpa_obj.name, namespace=hpa_obj.namespace)
    assert (hpa.spec.minReplicas, hpa.spec.maxReplicas) == (api.autoscaling.min_replicas, api.autoscaling.max_replicas)
    targets = {m.resource.name: m.resource.target.averageUtilization for m in hpa.spec.metrics if m.resource}
    assert targets == {"cpu": api.autoscaling.cpu_utilization, "memory": api.autoscaling.memory_utilization}
    window = hpa.spec.behavior.scaleDown.stabilizationWindowSeconds
    assert window == api.autoscaling.scale_down_stabilization_s
    [pdb_obj] = [o for o in deployed.applied.of_kind("PodDisruptionBudget") if o.app == "inference-api"]
    pdb = deployed.client.get(PodDisruptionBudget, pdb_obj.name, namespace=pdb_obj.namespace)
    assert pdb.spec.minAvailable == api.pdb_min_available
    # The PDB protects the API's pods: the disruption controller counts them.
    wait_for(
        lambda: (s := deployed.client.get(PodDisruptionBudget, pdb_obj.name, namespace=pdb_obj.namespace).status)
        and (s.expectedPods or 0) >= api.autoscaling.min_replicas
        and s.desiredHealthy == api.pdb_min_available,
        what=f"PDB {pdb_obj.name} counting the API's pods",
        timeout=60,
    )


def test_triggering_each_cronjob_creates_a_job_that_completes(deployed: DeployedEnv) -> None:
    cronjobs = deployed.applied.of_kind("CronJob")
    assert cronjobs
    for cron in cronjobs:
        ns = cron.namespace or "default"
        job_name = f"{cron.name}-manual-{dt.datetime.now(dt.UTC):%H%M%S}"[:63]
        trigger_cronjob(deployed.client, cron.name, ns, job_name=job_name)
        job = wait_job_complete(deployed.client, job_name, ns)
        assert job.status.succeeded == 1
        owners = [o.name for o in job.metadata.ownerReferences or []]
        assert owners == [cron.name]


def test_backfill_indexed_job_fans_out_over_every_partition(deployed: DeployedEnv) -> None:
    env = deployed.env
    parallelism = env.apps.batch_pipeline.backfill_parallelism
    start = dt.date(2026, 1, 1)
    end = start + dt.timedelta(days=2 * parallelism)  # more partitions than run at once
    manifest = batch.backfill_job(env, start=start, end=end, name=f"backfill-{env.name}-e2e")
    live = apply_manifest(deployed.client, manifest)
    name, ns = live["metadata"]["name"], live["metadata"]["namespace"]
    job = wait_job_complete(deployed.client, name, ns, timeout=300)
    days = len(batch.partitions(start=start, end=end))
    assert job.spec.parallelism == parallelism
    assert job.status.succeeded == days
    assert job.status.completedIndexes == f"0-{days - 1}"
    indexes = {
        int((p.metadata.annotations or {})["batch.kubernetes.io/job-completion-index"])
        for p in deployed.client.list(Pod, namespace=ns, labels={"job-name": name})
    }
    assert indexes == set(range(days))
    deployed.client.delete(Job, name, namespace=ns, cascade=CascadeType.BACKGROUND)


def test_the_cronjob_controller_schedules_the_rendered_cronjob(deployed_env: Callable[[str], DeployedEnv]) -> None:
    """The rendered daily CronJob, on a one-minute schedule, is scheduled by the real controller."""
    deployed = deployed_env("local")
    cron = next(o for o in deployed.applied.of_kind("CronJob") if o.app == "batch-pipeline")
    every_minute = copy.deepcopy(cron.manifest)
    every_minute["metadata"]["name"] = f"{cron.name}-every-minute"
    every_minute["spec"]["schedule"] = "* * * * *"
    since = dt.datetime.now(dt.UTC).replace(microsecond=0)
    apply_manifest(deployed.client, every_minute)
    try:
        scheduled = wait_cronjob_scheduled(deployed.client, every_minute["metadata"]["name"], cron.namespace or "default", since=since, timeout=150)
        assert scheduled.status.active or scheduled.status.lastSuccessfulTime
    finally:
        deployed.client.delete(CronJob, every_minute["metadata"]["name"], namespace=cron.namespace, cascade=CascadeType.BACKGROUND)
