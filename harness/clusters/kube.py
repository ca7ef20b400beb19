"""The Kubernetes client (lightkube) behind every helper: one place builds clients and applies
manifests. What an API answer means (404: not found) is decided in infra/kube_api.py, which
infra's own objects share."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ApiError, Client, codecs
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import Namespace, Node
from lightkube.types import PatchType

from apps.waiting import wait_for

FIELD_MANAGER = "mlops-harness"


def client_for(kubeconfig: Path, *, context: str | None = None, timeout_s: float = 30) -> Client:
    config = KubeConfig.from_file(str(kubeconfig))
    return Client(config.get(context_name=context), field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(timeout_s))


def serving(client: Client) -> bool:
    """True when the API server answers an authenticated read."""
    try:
        client.get(Namespace, "default")
    except (ApiError, httpx2.HTTPError, OSError):
        return False
    return True


def to_resource(manifest: dict[str, Any]) -> Any:
    """A lightkube object of the manifest's kind (generic resources included): its type is the
    manifest's, known at run time only."""
    return codecs.from_dict(manifest)


def apply_manifest(client: Client, manifest: dict[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
    """Server-side apply of one object (forced: the harness owns what it applies); the live object."""
    obj = to_resource(manifest)
    meta = manifest["metadata"]
    if subresource == "status":
        live = client.patch(
            type(obj).Status,
            meta["name"],
            manifest,
            namespace=meta.get("namespace"),
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=True,
        )
    else:
        live = client.apply(obj, field_manager=FIELD_MANAGER, force=True)
    out: dict[str, Any] = live.to_dict()
    return out


def _ready(node: Node) -> bool:
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def wait_nodes_ready(client: Client, *, names: Iterable[str], timeout: float = 120) -> None:
    wanted = set(names)

    def not_ready() -> list[str]:
        ready = {n.metadata.name for n in client.list(Node) if n.metadata and _ready(n)}
        return sorted(wanted - ready)

    wait_for(
        lambda: not not_ready() or None,
        what=f"{len(wanted)} nodes Ready",
        timeout=timeout,
        interval=0.5,
        transient=(ApiError, httpx2.HTTPError),
        describe=lambda: f"not ready: {not_ready()}",
        hint="kwok's controller marks nodes annotated kwok.x-k8s.io/node=fake Ready: see `kwokctl logs kwok-controller`",
    )
