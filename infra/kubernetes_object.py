"""One Kubernetes object as a Pulumi resource (a dynamic provider), for the `local` stack.

Cloud stacks manage their cluster's objects with pulumi-kubernetes. Its provider plugin is
not to be had on this project's machines (its Go module is not served), so the local stack
uses this small provider instead: create and update are a server-side apply of the manifest
(field manager `pulumi`, so fields dropped from the manifest are dropped from the object),
the diff is the manifest itself, and delete waits until the object is gone, finalizers
included (a root Application's cascade runs before Argo CD's own objects go).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

# Imported with the module, never lazily in a method: Pulumi's dynamic provider imports this
# module once under its lock, then serves calls on many threads, and imports racing on those
# threads crashed it (a segmentation fault on a refresh of 60 objects).
import httpx2
import pulumi
from lightkube import ApiError, Client, codecs
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import LoadResourceError
from lightkube.generic_resource import load_in_cluster_generic_resources
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from apps.waiting import WaitTimeoutError, wait_for
from infra.errors import KubernetesObjectError
from infra.kube_api import delete_if_present, found, get_or_none, not_found

FIELD_MANAGER = "pulumi"
# Changing any of these names another object: a replacement, not an update.
IDENTITY = ("apiVersion", "kind", "name", "namespace")
DELETE_TIMEOUT_S = 180.0
# A CRD created a moment ago is listed before the API server serves its group (404 until it is
# Established): its first objects are retried for this long.
CRD_SERVING_TIMEOUT_S = 60.0
# Pulumi serves the provider's calls on many threads. lightkube's registry of custom kinds is not
# thread-safe, and its models decode lazily (msgspec evaluates a class's annotations on first
# use), which crashed the process when dozens of threads did it at once (a refresh of Argo CD's
# 60 objects). Every call to the API server holds this lock; a deletion's wait sleeps outside it.
_API_LOCK = threading.RLock()


def identity(manifest: dict[str, Any]) -> dict[str, str | None]:
    meta = manifest.get("metadata") or {}
    return {"apiVersion": manifest.get("apiVersion"), "kind": manifest.get("kind"), "name": meta.get("name"),
            "namespace": meta.get("namespace")}


def ref(manifest: dict[str, Any]) -> str:
    i = identity(manifest)
    return f"{i['kind']} {i['namespace'] + '/' if i['namespace'] else ''}{i['name']}"


def integral(value: Any) -> Any:
    """The manifest as written: Pulumi carries every number as a float (`priority: 0` arrives as
    0.0), which Kubernetes refuses for integer fields."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(kubeconfig: str) -> Any:
    """One client per kubeconfig for the provider's life, shared by its threads: building TLS
    contexts on dozens of threads at once (a refresh of Argo CD's 60 objects) crashed the
    provider process with a segmentation fault."""

    with _CLIENTS_LOCK:
        if kubeconfig not in _CLIENTS:
            try:
                config = KubeConfig.from_file(kubeconfig)
            except Exception as e:  # missing file, bad YAML: say which file
                raise KubernetesObjectError(f"cannot read kubeconfig {kubeconfig}: {e}") from e
            _CLIENTS[kubeconfig] = Client(config, field_manager=FIELD_MANAGER)
        return _CLIENTS[kubeconfig]


def _resource_type(client: Any, manifest: dict[str, Any]) -> Any:
    """The lightkube type of the manifest's kind (a custom kind is looked up in the cluster);
    None when the cluster does not serve it (its CRD is not there, or no longer)."""
    manifest = integral(manifest)
    with _API_LOCK:
        try:
            return type(codecs.from_dict(manifest))
        except LoadResourceError:
            load_in_cluster_generic_resources(client)
        try:
            return type(codecs.from_dict(manifest))
        except LoadResourceError:
            return None


def _status(error: ApiError | httpx2.HTTPStatusError) -> int | None:
    return error.status.code if isinstance(error, ApiError) else error.response.status_code


def _message(error: ApiError | httpx2.HTTPStatusError) -> str:
    return (error.status.message or str(error)) if isinstance(error, ApiError) else str(error)


def apply(kubeconfig: str, manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = integral(manifest)
    client = _client(kubeconfig)
    if _resource_type(client, manifest) is None:
        raise KubernetesObjectError(f"{ref(manifest)}: the cluster serves no {manifest.get('apiVersion')} "
                                    f"{manifest.get('kind')}: is its CRD applied first?")
    not_served: list[ApiError | httpx2.HTTPStatusError] = []

    def applied() -> dict[str, Any] | None:
        try:
            with _API_LOCK:
                live = client.apply(codecs.from_dict(manifest), field_manager=FIELD_MANAGER, force=True)
                out: dict[str, Any] = live.to_dict()
                return out
        except (ApiError, httpx2.HTTPStatusError) as e:
            if not not_found(e):
                raise KubernetesObjectError(f"{ref(manifest)}: apply refused (HTTP {_status(e)}): {_message(e)}") from e
            not_served[:] = [e]  # its kind's group is not served yet: tried again
            return None

    try:
        return wait_for(applied, what=f"the API server to serve the kind of {ref(manifest)}",
                        timeout=CRD_SERVING_TIMEOUT_S, interval=0.5)
    except WaitTimeoutError as e:
        last = not_served[-1]
        raise KubernetesObjectError(f"{ref(manifest)}: apply refused (HTTP {_status(last)}): {_message(last)}") from e


def exists(kubeconfig: str, manifest: dict[str, Any]) -> bool:
    client = _client(kubeconfig)
    kind, i = _resource_type(client, manifest), identity(manifest)
    if kind is None:
        return False
    try:
        with _API_LOCK:
            return found(client, kind, str(i["name"]), namespace=i["namespace"])
    except ApiError as e:
        raise KubernetesObjectError(f"{ref(manifest)}: reading it: {e.status.message}") from e


def delete(kubeconfig: str, manifest: dict[str, Any], *, timeout: float = DELETE_TIMEOUT_S) -> None:
    """Delete and wait until the API server no longer has it; gone already counts as done."""
    client = _client(kubeconfig)
    kind, i = _resource_type(client, manifest), identity(manifest)
    if kind is None:
        return  # its kind is gone, and every object of it with it
    try:
        with _API_LOCK:
            if not delete_if_present(client, kind, str(i["name"]), namespace=i["namespace"]):
                return
    except ApiError as e:
        raise KubernetesObjectError(f"{ref(manifest)}: delete refused: {e.status.message}") from e
    finalizers: list[str] = []

    def gone() -> bool:
        try:
            with _API_LOCK:  # held for the read only: wait_for's poll interval sleeps outside it
                live = get_or_none(client, kind, str(i["name"]), namespace=i["namespace"])
        except ApiError as e:
            raise KubernetesObjectError(f"{ref(manifest)}: reading it while deleting: {e.status.message}") from e
        finalizers[:] = ((live.metadata.finalizers if live and live.metadata else None) or [])
        return live is None

    try:
        wait_for(gone, what=f"{ref(manifest)} deleted", timeout=timeout, interval=0.5)
    except WaitTimeoutError as e:
        raise KubernetesObjectError(
            f"{ref(manifest)} still exists {timeout:.0f}s after its deletion; finalizers {finalizers}: "
            "the controller that owns them (Argo CD for Applications) must be running") from e


@contextlib.contextmanager
def reaching(kubeconfig: str, manifest: dict[str, Any]) -> Iterator[None]:
    """An unreachable API server becomes one line naming the object and the kubeconfig."""

    try:
        yield
    except (httpx2.TransportError, OSError) as e:
        raise KubernetesObjectError(f"{ref(manifest)}: cannot reach the cluster of {kubeconfig}: {e}; "
                                    "is the local cluster up (`mlops harness cluster list`)?") from e


def _target(props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The kubeconfig and the manifest (stored as JSON text when large, see KubernetesObject)."""
    manifest = props.get("manifest") or {}
    return props["kubeconfig"], json.loads(manifest) if isinstance(manifest, str) else manifest


class KubernetesObjectProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        kubeconfig, manifest = _target(props)
        with reaching(kubeconfig, manifest):
            live = apply(kubeconfig, manifest)
        return CreateResult(id_="/".join(str(v) for v in identity(manifest).values() if v),
                            outs={**props, "uid": live["metadata"]["uid"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """On refresh: an object deleted behind Pulumi's back leaves the state (`pulumi up` makes it again)."""
        kubeconfig, manifest = _target(props)
        with reaching(kubeconfig, manifest):
            found = exists(kubeconfig, manifest)
        return ReadResult(id_ if found else "", dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("kubeconfig", "manifest") if olds.get(k) != news.get(k)]
        replaced = identity(_target(olds)[1]) != identity(_target(news)[1])
        return DiffResult(changes=bool(changed), replaces=["manifest"] if replaced else [],
                          delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        kubeconfig, manifest = _target(news)
        with reaching(kubeconfig, manifest):
            live = apply(kubeconfig, manifest)
        return UpdateResult(outs={**news, "uid": live["metadata"]["uid"]})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        kubeconfig, manifest = _target(props)
        with reaching(kubeconfig, manifest):
            delete(kubeconfig, manifest)


# Above this size a manifest travels as JSON text: Pulumi's engine and the Python dynamic
# provider handle one large string in milliseconds but a deep structure (a 377 KB CRD) in
# seconds. Small objects stay structured, so their diffs show fields.
AS_TEXT_BYTES = 32_000


class KubernetesObject(Resource):
    """`manifest` as the cluster behind `kubeconfig` should have it; `uid` is the live object's."""

    uid: pulumi.Output[str]

    def __init__(self, name: str, *, kubeconfig: str, manifest: pulumi.Input[dict[str, Any]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(manifest, dict) and len(text := json.dumps(manifest, sort_keys=True)) > AS_TEXT_BYTES:
            manifest = text  # type: ignore[assignment]
        super().__init__(KubernetesObjectProvider(), name,
                         {"kubeconfig": kubeconfig, "manifest": manifest, "uid": None}, opts)
