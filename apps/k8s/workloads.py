"""The workload objects: Deployments and their budgets and autoscalers, Jobs and CronJobs,
Services, ConfigMaps, ServiceAccounts and claims."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from apps.k8s.meta import AppMeta, BuildError, Obj, metadata, workload_skips
from environments.model import Autoscaling


def spread(meta: AppMeta) -> Obj:
    """Prefer one replica per node and per zone: a lost node or zone never takes every replica."""
    selector = {"matchLabels": meta.selector()}
    terms = [(100, "kubernetes.io/hostname"), (50, "topology.kubernetes.io/zone")]
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": weight, "podAffinityTerm": {"labelSelector": selector, "topologyKey": key}} for weight, key in terms
    ]}}


def deployment(
    *, meta: AppMeta, name: str, namespace: str, replicas: int, template: Obj, max_surge: int | str = 1,
    kube_score: Sequence[tuple[str, str]] = (),
) -> Obj:
    annotations = workload_skips(meta.env, kube_score=kube_score)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(meta=meta, name=name, namespace=namespace, annotations=annotations),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": meta.selector()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": 0}},
            "template": template,
        },
    }


def pod_disruption_budget(*, meta: AppMeta, name: str, namespace: str, min_available: int | None = None) -> Obj:
    """At most one pod of the selection down at a time in a drain (or `min_available` kept up);
    unhealthy pods may always be evicted, so an unready replica never blocks a node drain."""
    budget: Obj = {"minAvailable": min_available} if min_available is not None else {"maxUnavailable": 1}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "spec": {**budget, "selector": {"matchLabels": meta.selector()}, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }


# A Deployment an HPA scales still renders its starting replicas (kube-score frowns on it).
HPA_OWNS_REPLICAS = ("deployment-targeted-by-hpa-does-not-have-replicas-configured",
                     "replicas are the starting point on the first sync; Argo CD ignores the field afterwards")


def horizontal_pod_autoscaler(*, meta: AppMeta, name: str, namespace: str, scaling: Autoscaling) -> Obj:
    """autoscaling/v2 on CPU and memory utilisation for the Deployment ``name``; Argo CD then
    ignores that Deployment's replicas (argocd.render finds the HPA's target)."""

    def utilization(resource: str, target: int) -> Obj:
        return {
            "type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}},
        }

    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                utilization("cpu", scaling.cpu_utilization),
                utilization("memory", scaling.memory_utilization),
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": scaling.scale_up_stabilization_s},
                "scaleDown": {"stabilizationWindowSeconds": scaling.scale_down_stabilization_s},
            },
        },
    }


def job_spec(*, template: Obj, active_deadline_s: int, backoff_limit: int, ttl_s: int | None = 86400) -> Obj:
    """ttl_s=None for a CronJob's Jobs: its history limits decide how many finished runs stay."""
    spec: Obj = {"activeDeadlineSeconds": active_deadline_s, "backoffLimit": backoff_limit}
    if ttl_s is not None:
        spec["ttlSecondsAfterFinished"] = ttl_s
    return {**spec, "template": template}


def cron_job(
    *,
    meta: AppMeta,
    name: str,
    namespace: str,
    schedule: str,
    time_zone: str,
    job: Obj,
) -> Obj:
    if "ttlSecondsAfterFinished" in job:
        # A TTL shorter than the history (3 daily runs) would delete the runs the limits keep.
        raise BuildError(f"CronJob {namespace}/{name}: its Jobs are kept by the history limits, not a TTL")
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(meta=meta, name=name, namespace=namespace, annotations=workload_skips(meta.env)),
        "spec": {
            "schedule": schedule,
            "timeZone": time_zone,
            "concurrencyPolicy": "Forbid",
            # A run missed by more than an hour (control plane down) is skipped, not stacked.
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": meta.labels()}, "spec": job},
        },
    }


def service(
    *,
    meta: AppMeta,
    name: str,
    namespace: str,
    ports: Mapping[str, tuple[int, str]],
    type_: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP",
    annotations: Mapping[str, str] | None = None,
) -> Obj:
    """ports: name -> (service port, target port name)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(meta=meta, name=name, namespace=namespace, annotations=annotations),
        "spec": {
            "type": type_,
            "selector": meta.selector(),
            "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for n, (p, t) in ports.items()],
        },
    }


def config_map(*, meta: AppMeta, name: str, namespace: str, data: Mapping[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "data": dict(data),
    }


def service_account(*, meta: AppMeta, name: str, namespace: str, role_arn: str | None) -> Obj:
    """IRSA needs the role on the ServiceAccount; Pod Identity associations live in AWS (infra)."""
    identity = meta.env.aws.cluster.identity if meta.env.aws else None
    annotations: dict[str, str] = {}
    if identity == "irsa":
        if not role_arn:
            raise BuildError(
                f"env {meta.env.name}: ServiceAccount {namespace}/{name} uses IRSA but no role ARN was given; "
                f"pass role_arns={{'{meta.name}': 'arn:aws:iam::...:role/...'}} to render_environment"
            )
        annotations["eks.amazonaws.com/role-arn"] = role_arn
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(meta=meta, name=name, namespace=namespace, annotations=annotations or None),
        "automountServiceAccountToken": False,
    }


def persistent_volume_claim(
    *, meta: AppMeta, name: str, namespace: str, size: str, read_write_many: bool, storage_class: str | None
) -> Obj:
    spec: Obj = {
        "accessModes": ["ReadWriteMany" if read_write_many else "ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "spec": spec,
    }
