"""Argo CD Applications as a user reads them (`argocd app list`): sync and health status,
revision, conditions, the last operation; waits and a dump for failure reports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx2
import yaml
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from pydantic import BaseModel, ConfigDict

from apps.waiting import wait_for

Application = create_namespaced_resource("argoproj.io", "v1alpha1", "Application", "applications")
TRANSIENT = (ApiError, httpx2.HTTPError)


class AppStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    sync: str
    health: str
    revision: str | None
    operation_phase: str | None
    operation_message: str | None
    conditions: list[str]
    # (kind, namespace, name) the last sync applied, as Argo CD reports it.
    synced_resources: list[tuple[str, str, str]]
    # The revision the last sync operation applied (None: never synced).
    synced_revision: str | None
    deleting: bool
    # (kind, namespace, name, health) of resources not Healthy (the controller persists them).
    unhealthy: list[tuple[str, str, str, str]] = []

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> AppStatus:
        status = obj.get("status") or {}
        operation = status.get("operationState") or {}
        results = (operation.get("syncResult") or {}).get("resources") or []
        return cls(
            name=obj["metadata"]["name"],
            sync=(status.get("sync") or {}).get("status") or "Unknown",
            health=(status.get("health") or {}).get("status") or "Unknown",
            revision=(status.get("sync") or {}).get("revision"),
            operation_phase=operation.get("phase"),
            operation_message=operation.get("message"),
            conditions=[f"{c.get('type')}: {c.get('message')}" for c in status.get("conditions") or []],
            synced_resources=[(r.get("kind", ""), r.get("namespace", ""), r.get("name", "")) for r in results],
            synced_revision=(operation.get("syncResult") or {}).get("revision"),
            deleting=bool(obj["metadata"].get("deletionTimestamp")),
            unhealthy=[
                (r.get("kind", ""), r.get("namespace", ""), r.get("name", ""), r["health"]["status"])
                for r in status.get("resources") or []
                if (r.get("health") or {}).get("status") not in (None, "Healthy")
            ],
        )

    @property
    def synced(self) -> bool:
        return self.sync == "Synced" and self.operation_phase in (None, "Succeeded")

    def line(self) -> str:
        extra = f" op={self.operation_phase}: {self.operation_message}" if self.operation_phase not in (None, "Succeeded") else ""
        cond = f" conditions={self.conditions}" if self.conditions else ""
        sick = f" unhealthy={self.unhealthy}" if self.unhealthy else ""
        return f"{self.name}: {self.sync}/{self.health} rev={(self.revision or '-')[:12]}{extra}{cond}{sick}"


def applications(client: Client, namespace: str) -> dict[str, AppStatus]:
    return {
        a.name: a
        for a in (AppStatus.from_object(o.to_dict()) for o in client.list(Application, namespace=namespace))
    }


def describe_applications(client: Client, namespace: str) -> str:
    """Every Application's status block (conditions, operation state, resources) as YAML."""
    try:
        objects = list(client.list(Application, namespace=namespace))
    except TRANSIENT as e:
        return f"(cannot list Applications in {namespace}: {e})"
    parts = []
    for obj in objects:
        data = obj.to_dict()
        parts.append(f"--- Application {namespace}/{data['metadata']['name']}")
        parts.append(yaml.safe_dump(data.get("status") or {}, default_flow_style=False, width=200).rstrip())
    return "\n".join(parts) or f"(no Applications in {namespace})"


def wait_applications(
    client: Client,
    namespace: str,
    *,
    names: Iterable[str],
    revision: str | None = None,
    timeout: float = 300,
    extra: Callable[[], str] | None = None,
    healthy: Callable[[AppStatus], bool] = lambda a: a.health == "Healthy",
) -> dict[str, AppStatus]:
    """Until exactly `names` exist and each is Synced (at `revision` when given), its last
    operation succeeded, and `healthy` holds (Argo CD's verdict Healthy, unless told otherwise)."""
    wanted = set(names)

    def probe() -> dict[str, AppStatus] | None:
        found = applications(client, namespace)
        if set(found) != wanted:
            return None
        if all(a.synced and healthy(a) and not a.deleting and (revision is None or a.revision == revision) for a in found.values()):
            return found
        return None

    def describe() -> str:
        try:
            lines = [a.line() for a in applications(client, namespace).values()]
        except TRANSIENT as e:
            lines = [f"(cannot list: {e})"]
        text = f"wanted {sorted(wanted)} at {revision or 'any revision'}; seen:\n  " + "\n  ".join(lines)
        return f"{text}\n{describe_applications(client, namespace)}" + (f"\n{extra()}" if extra else "")

    return wait_for(
        probe,
        what=f"Applications {sorted(wanted)} Synced/Healthy",
        timeout=timeout,
        interval=1.0,
        transient=TRANSIENT,
        describe=describe,
        hint="read the conditions above, then the application-controller and repo-server logs",
    )
