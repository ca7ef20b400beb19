"""What explains a failure on a cluster: events, object status and pod logs, as report text."""

from __future__ import annotations

from collections.abc import Iterable

import httpx2
import yaml
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import Event, Node, PersistentVolumeClaim, Pod

from harness.clusters.fields import name_of

MAX_EVENTS = 60
LOG_LINES = 40


def _status_lines(client: Client, resource: type[Deployment | Job | CronJob | PersistentVolumeClaim],
                  namespace: str) -> list[str]:
    lines = []
    for obj in client.list(resource, namespace=namespace):
        status = obj.status.to_dict() if obj.status else {}
        status.pop("containerStatuses", None)
        lines.append(f"--- {resource.__name__} {namespace}/{name_of(obj)}")
        lines.append(yaml.safe_dump(status, default_flow_style=False, width=200).rstrip())
    return lines


def _pods(client: Client, namespace: str) -> list[str]:
    lines = []
    for pod in client.list(Pod, namespace=namespace):
        phase = pod.status.phase if pod.status else "?"
        reasons = [f"{c.type}={c.status}({c.reason or ''}: {c.message or ''})" for c in (pod.status.conditions or [])] if pod.status else []
        node = pod.spec.nodeName if pod.spec else None
        lines.append(f"pod {namespace}/{name_of(pod)} phase={phase} node={node} {'; '.join(reasons)}")
        try:
            logs = list(client.log(name_of(pod), namespace=namespace, tail_lines=LOG_LINES))
        except ApiError as e:
            logs = [f"(no logs: {e.status.message or e})\n"]
        except httpx2.HTTPError as e:
            logs = [f"(no logs: {e})\n"]
        lines.extend("    " + line.rstrip("\n") for line in logs)
    return lines


def _events(client: Client, namespace: str) -> list[str]:
    events = list(client.list(Event, namespace=namespace))
    events.sort(key=lambda e: str(e.lastTimestamp or e.eventTime or e.metadata.creationTimestamp or ""))
    return [
        f"{e.lastTimestamp or e.eventTime} {e.type} {e.involvedObject.kind}/{e.involvedObject.name} {e.reason}: {e.message}"
        for e in events[-MAX_EVENTS:]
    ]


def dump(client: Client, namespaces: Iterable[str]) -> str:
    """Events, Deployment/Job/CronJob/PVC status, pods with their conditions and logs, and node capacity."""
    out: list[str] = []
    for ns in sorted(set(namespaces)):
        out.append(f"===== namespace {ns}")
        try:
            out.append("-- events")
            out.extend(_events(client, ns))
            for resource in (Deployment, Job, CronJob, PersistentVolumeClaim):
                out.extend(_status_lines(client, resource, ns))
            out.append("-- pods")
            out.extend(_pods(client, ns))
        except (ApiError, httpx2.HTTPError) as e:
            out.append(f"(could not read namespace {ns}: {e})")
    try:
        out.append("===== nodes (allocatable)")
        for node in client.list(Node):
            alloc = node.status.allocatable if node.status else {}
            labels = node.metadata.labels if node.metadata else None
            taints = [t.key for t in ((node.spec.taints if node.spec else None) or [])]
            out.append(f"{name_of(node)} labels={labels} taints={taints} allocatable={alloc}")
    except (ApiError, httpx2.HTTPError) as e:
        out.append(f"(could not list nodes: {e})")
    return "\n".join(out)
