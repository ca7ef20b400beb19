"""What a simulated cluster cannot give a workload, read from the cluster itself: Argo CD's
verdict on a resource is accepted as "not Healthy for a known reason" only when the real
control plane says why (the scheduler found no node; no metrics API serves the HPA).
Anything else not Healthy stays a failure."""

from __future__ import annotations

from collections.abc import Callable

from lightkube import Client
from lightkube.resources.apiregistration_v1 import APIService
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Pod

from harness.argocd_local.applications import AppStatus
from infra.kube_api import found

METRICS_API = "v1beta1.metrics.k8s.io"


def _metrics_api_served(client: Client) -> bool:
    return found(client, APIService, METRICS_API)


def _hpa(client: Client, namespace: str, name: str) -> str | None:
    hpa = client.get(HorizontalPodAutoscaler, name, namespace=namespace)
    for c in (hpa.status.conditions if hpa.status else None) or []:
        if c.type == "ScalingActive" and c.status == "False" and c.reason == "FailedGetResourceMetric":
            if not _metrics_api_served(client):
                return f"HorizontalPodAutoscaler {namespace}/{name}: the cluster serves no {METRICS_API} (no metrics server)"
    return None


def _deployment(client: Client, namespace: str, name: str) -> str | None:
    dep = client.get(Deployment, name, namespace=namespace)
    selector = (dep.spec.selector.matchLabels if dep.spec and dep.spec.selector else None) or {}
    if not selector:
        return None
    pods = list(client.list(Pod, namespace=namespace, labels=selector))
    waiting = [p for p in pods if not (p.status and p.status.phase == "Running")]
    if not waiting:
        return None
    reasons = set()
    for pod in waiting:
        scheduled = next((c for c in (pod.status.conditions if pod.status else None) or [] if c.type == "PodScheduled"), None)
        if scheduled is None or scheduled.status != "False" or scheduled.reason != "Unschedulable":
            return None  # a pod waits for something other than a node: not explained
        reasons.add(scheduled.message or "Unschedulable")
    return f"Deployment {namespace}/{name}: {len(waiting)} pod(s) unschedulable: {'; '.join(sorted(reasons))[:300]}"


_EXPLAINERS: dict[tuple[str, str], Callable[[Client, str, str], str | None]] = {
    ("HorizontalPodAutoscaler", "Degraded"): _hpa,
    ("Deployment", "Progressing"): _deployment,
}


def explain(client: Client, app: AppStatus) -> list[str] | None:
    """Why each not-Healthy resource of `app` is so, per the cluster; None if any is unexplained
    (or Argo CD's verdict is not Healthy and names no resource)."""
    if app.health == "Healthy":
        return []
    if not app.unhealthy:
        return None
    reasons = []
    for kind, namespace, name, health in app.unhealthy:
        explainer = _EXPLAINERS.get((kind, health))
        reason = explainer(client, namespace, name) if explainer else None
        if reason is None:
            return None
        reasons.append(reason)
    return reasons
