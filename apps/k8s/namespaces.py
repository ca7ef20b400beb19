"""An app's namespace and its guard rails: Pod Security "restricted", a quota sized to the app's
peak, default limits, its service account and a default-deny policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from apps.k8s.meta import AppMeta, Obj, metadata
from apps.k8s.network import default_deny
from apps.k8s.pods import GPU_RESOURCE
from apps.k8s.workloads import service_account
from environments.quantities import cpu_millis, format_cpu, format_memory, memory_bytes


def namespace(*, meta: AppMeta, name: str) -> Obj:
    version = meta.env.aws.cluster.kubernetes_version if meta.env.aws else "latest"
    pinned = f"v{version}" if version != "latest" else version
    labels = meta.labels()
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = pinned
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


@dataclass(frozen=True)
class PodBudget:
    """How many pods of one size a namespace may run at most (replicas plus rollout surge)."""

    resources: Obj
    count: int


def resource_quota(*, meta: AppMeta, name: str, namespace: str, budgets: Sequence[PodBudget],
                   node_ports: int = 0) -> Obj:
    """Quota derived from what the namespace's workloads may run: nothing restated by hand."""
    hard: dict[str, str] = {"pods": str(sum(b.count for b in budgets) or 1)}
    for bound in ("requests", "limits"):
        cpu = sum(cpu_millis(b.resources[bound]["cpu"]) * b.count for b in budgets)
        mem = sum(memory_bytes(b.resources[bound]["memory"]) * b.count for b in budgets)
        hard[f"{bound}.cpu"] = format_cpu(max(cpu, 1000))
        hard[f"{bound}.memory"] = format_memory(max(mem, 2**30))
    gpus = sum(int(b.resources["limits"].get(GPU_RESOURCE, "0")) * b.count for b in budgets)
    if gpus:
        hard[f"requests.{GPU_RESOURCE}"] = str(gpus)
    hard["persistentvolumeclaims"] = "4"
    hard["services.loadbalancers"] = "1"
    hard["services.nodeports"] = str(node_ports)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "spec": {"hard": hard},
    }


def limit_range(*, meta: AppMeta, name: str, namespace: str, default: Obj, largest: Obj) -> Obj:
    """Defaults for a container that forgets its resources; no container above the largest limit."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": dict(default["limits"]),
                    "defaultRequest": dict(default["requests"]),
                    "max": {"cpu": largest["limits"]["cpu"], "memory": largest["limits"]["memory"]},
                }
            ]
        },
    }


def largest(resources_list: Sequence[Obj]) -> Obj:
    return max(resources_list, key=lambda r: (cpu_millis(r["limits"]["cpu"]), memory_bytes(r["limits"]["memory"])))


def namespace_bundle(*, meta: AppMeta, app: str, ns: str, budgets: Sequence[PodBudget], default: Obj, largest: Obj,
                     account: str, role_arn: str | None, node_ports: int = 0) -> list[Obj]:
    """What each app's own namespace holds before its workloads: the namespace (Pod Security
    "restricted"), a quota sized to the app's peak, default limits, the app's service account
    (with its role where IRSA wants it) and a default-deny NetworkPolicy."""
    return [
        namespace(meta=meta, name=ns),
        resource_quota(meta=meta, name=f"{app}-quota", namespace=ns, budgets=budgets, node_ports=node_ports),
        limit_range(meta=meta, name=f"{app}-limits", namespace=ns, default=default, largest=largest),
        service_account(meta=meta, name=account, namespace=ns, role_arn=role_arn),
        default_deny(meta=meta, namespace=ns),
    ]
