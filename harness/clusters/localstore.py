"""The local environment's object store inside its cluster: MinIO as a pod where `storage.endpoint_url` says.

On EKS the apps reach S3 through Pod Identity. The local environment names an S3-compatible
endpoint instead (`http://minio.ml-storage.svc:9000`); on a cluster that runs pods (kind) this puts
MinIO behind exactly that Service, creates the environment's buckets, and gives each app namespace
the optional `s3-credentials` Secret its workloads mount (apps/k8s/pods.py). Keys are fresh per store:
nothing secret is written to git or to the logs. The host reaches the store through a NodePort on
a node's address.

    >>> store = deploy_store(client, env, image="mlops-minio:1a2b3c4d5e6f")   # doctest: +SKIP
    >>> store.create_bucket("local-ml-models")                                   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError
from lightkube import Client
from lightkube.resources.core_v1 import Node, Secret, Service

from apps.k8s import S3_CREDENTIALS_SECRET, cpu_node_selector
from apps.waiting import wait_for
from argocd.render import RenderedTree
from environments.model import Environment
from harness.clusters.deploy import wait_deployment_available
from harness.clusters.errors import DeployError
from harness.clusters.fields import service_ports
from harness.clusters.kube import FIELD_MANAGER, apply_manifest
from harness.containers.objectstore import MINIO_UID
from harness.containers.services import REGION, S3Service
from infra.kube_api import delete_if_present, found, get_or_none

LABELS = {"app.kubernetes.io/name": "minio", "app.kubernetes.io/component": "object-store",
          "app.kubernetes.io/managed-by": FIELD_MANAGER}
CREDENTIALS_FILE = "credentials"  # the key apps read through AWS_SHARED_CREDENTIALS_FILE


def store_address(env: Environment) -> tuple[str, str, int]:
    """Pure: (Service, namespace, port) that `storage.endpoint_url` names; ValueError if it names none."""
    url = env.storage.endpoint_url
    parsed = urlparse(url or "")
    parts = (parsed.hostname or "").split(".")
    if len(parts) < 3 or parts[2] != "svc":
        raise ValueError(f"environments/{env.name}.yaml: storage.endpoint_url {url!r} is not a Service address "
                         "(http://<service>.<namespace>.svc:<port>): there is no in-cluster store to deploy")
    return parts[0], parts[1], parsed.port or 80


def buckets(env: Environment) -> list[str]:
    """Pure: the buckets the environment's URIs name (data and models)."""
    return sorted({urlparse(uri).netloc for uri in (env.storage.data_uri, env.storage.models_uri)})


def credentials_secret(*, namespace: str, access_key: str, secret_key: str) -> dict[str, Any]:
    """Pure: the `s3-credentials` Secret an app namespace's workloads mount (AWS shared-credentials file)."""
    text = f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\nregion = {REGION}\n"
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": S3_CREDENTIALS_SECRET, "namespace": namespace, "labels": LABELS},
            "stringData": {CREDENTIALS_FILE: text}}


def store_manifests(env: Environment, *, image: str, access_key: str, secret_key: str) -> list[dict[str, Any]]:
    """Pure: namespace, root keys, Deployment and NodePort Service of the store, under PSS restricted."""
    name, namespace, port = store_address(env)
    keys = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{name}-root", "namespace": namespace, "labels": LABELS},
            "stringData": {"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key}}
    container = {
        "name": "minio", "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["server", "/data", "--address", f":{port}"],
        "envFrom": [{"secretRef": {"name": f"{name}-root"}}],
        "ports": [{"name": "s3", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": "s3"}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": MINIO_UID, "runAsGroup": MINIO_UID,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": LABELS}, "template": {
            "metadata": {"labels": LABELS},
            "spec": {"automountServiceAccountToken": False, "securityContext": {"fsGroup": MINIO_UID},
                     "nodeSelector": cpu_node_selector(env),  # where the apps' CPU workloads go
                     "containers": [container],
                     # Local data only: the store lives as long as the cluster's pod does.
                     "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "2Gi"}},
                                 {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
               "spec": {"type": "NodePort", "selector": LABELS, "ports": [{"name": "s3", "port": port, "targetPort": "s3"}]}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
        **LABELS, "pod-security.kubernetes.io/enforce": "restricted"}}}
    return [ns, keys, deployment, service]


def node_address(client: Client) -> str:
    """A node's InternalIP: where the host reaches NodePorts of a kind cluster (its Docker network)."""
    for node in client.list(Node):
        for address in (node.status.addresses if node.status else None) or []:
            if address.type == "InternalIP":
                return address.address
    raise DeployError(ref="Node", path="-", status=0, reason="no node reports an InternalIP")


def deploy_store(client: Client, env: Environment, *, image: str, tree: RenderedTree | None = None,
                 timeout: float = 180) -> S3Service:
    """MinIO deployed and ready, the environment's buckets created, and the `s3-credentials` Secret
    in every namespace of `tree` (their Namespace objects applied first, as the tree has them), so
    the apps' pods find their keys when they start. Idempotent: a rerun keeps the running store's keys."""
    name, namespace, port = store_address(env)
    internal_url = env.storage.endpoint_url
    assert internal_url is not None  # store_address refuses an environment without one
    access_key, secret_key = _existing_keys(client, name, namespace) or (
        f"mlops-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    for manifest in store_manifests(env, image=image, access_key=access_key, secret_key=secret_key):
        apply_manifest(client, manifest)
    wait_deployment_available(client, name, namespace, timeout=timeout)
    service = client.get(Service, name, namespace=namespace)
    node_port = next(p.nodePort for p in service_ports(service) if p.port == port)
    store = S3Service(endpoint_url=f"http://{node_address(client)}:{node_port}", internal_url=internal_url,
                      access_key=access_key, secret_key=secret_key)
    # kube-proxy programs the NodePort a moment after the Service exists: until then, refused.
    wait_for(lambda: store.client().list_buckets() is not None, what=f"the store at {store.endpoint_url}",
             timeout=timeout, interval=0.5, transient=(BotoCoreError, ClientError))
    for bucket in buckets(env):
        store.create_bucket(bucket)
    for obj in (tree.app_objects() if tree else []):
        if obj.kind == "Namespace":
            apply_manifest(client, obj.manifest)
            apply_manifest(client, credentials_secret(namespace=obj.name, access_key=access_key, secret_key=secret_key))
    return store


def _existing_keys(client: Client, name: str, namespace: str) -> tuple[str, str] | None:
    secret = get_or_none(client, Secret, f"{name}-root", namespace=namespace)
    data = (secret.data if secret else None) or {}
    if {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} <= data.keys():
        return base64.b64decode(data["MINIO_ROOT_USER"]).decode(), base64.b64decode(data["MINIO_ROOT_PASSWORD"]).decode()
    return None


@contextlib.contextmanager
def host_credentials(store: S3Service) -> Iterator[None]:
    """boto3 on the host reads the store's keys from the environment: set for the block only."""
    saved = {k: os.environ.get(k) for k in store.host_env()}
    os.environ.update(store.host_env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def seed_store(env: Environment, store: S3Service, *, input_rows: int = 200) -> str:
    """What an operator brings before the first sync: yesterday's input partition, its case
    vectors computed with the embedder the PCC family declares. No model: each family's first
    one comes from its bootstrap Job in the cluster, as in the cloud. Returns the partition."""
    from apps.batch.settings import yesterday_utc
    from apps.batch.sources import SampleSource, write_input_partition
    from apps.features import Featurizer, TfidfFeaturizer
    from apps.features.embedder import load_embedder
    from apps.storage import open_store

    embedder = env.models["pcc"].training.embedder or "hashing"
    partition = yesterday_utc()
    with host_credentials(store):
        featurizer = Featurizer(load_embedder(embedder), TfidfFeaturizer.reference())
        write_input_partition(open_store(env.storage.data_uri, endpoint_url=store.endpoint_url), partition,
                              SampleSource(rows=input_rows, featurizer=featurizer).read(partition))
    return partition


def remove_store(client: Client, env: Environment, *, tree: RenderedTree, timeout: float = 300) -> list[str]:
    """The store and its keys gone, after `destroy` removed the apps through Argo CD's cascade:
    the namespaces `deploy_store` made for the keys (the tree's, which Argo CD found there and so
    never owned) and the store's own. Waits until the API server has none of them; their names."""
    from lightkube.resources.core_v1 import Namespace

    names = [o.name for o in tree.app_objects() if o.kind == "Namespace"] + [store_address(env)[1]]
    for name in names:
        delete_if_present(client, Namespace, name)

    wait_for(lambda: not any(found(client, Namespace, n) for n in names), what=f"namespaces {names} deleted",
             timeout=timeout, interval=1.0)
    return names
