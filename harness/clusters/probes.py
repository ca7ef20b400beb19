"""Short-lived probes inside a cluster: a Python script in a Job of restricted pods, its output back.

The tests see a cluster the way its workloads do (Service names, volumes, node placement) by
running a script there rather than reaching in from the host. Every probe pod meets Pod Security
"restricted", so it runs in the apps' own namespaces.

    >>> job = script_job(name="hello", namespace="demo", image="mlops-base:x", script="print(1)")
    >>> job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"]
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightkube import ApiError, Client
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType

from harness.clusters.deploy import JobFailedError, wait_job_complete
from harness.clusters.fields import name_of
from harness.clusters.kube import FIELD_MANAGER, apply_manifest
from infra.kube_api import delete_if_present

PROBE_UID = 10001  # the images' unprivileged user
LABELS = {"app.kubernetes.io/managed-by": FIELD_MANAGER, "app.kubernetes.io/component": "probe"}


def restricted_container(*, image: str, command: list[str], mounts: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Pure: a container that Pod Security "restricted" admits, /tmp its only writable path."""
    return {
        "name": "main", "image": image, "imagePullPolicy": "IfNotPresent", "command": command,
        "securityContext": {"runAsNonRoot": True, "runAsUser": PROBE_UID, "runAsGroup": PROBE_UID,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
    }


def script_job(*, name: str, namespace: str, image: str, script: str, env: Mapping[str, str] | None = None,
               volumes: Sequence[Mapping[str, Any]] = (), mounts: Sequence[Mapping[str, Any]] = (),
               placement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pure: a one-try Job running `python -c script`; `placement` adds nodeSelector/tolerations/affinity."""
    container = restricted_container(image=image, command=["python", "-c", script], mounts=mounts)
    container["env"] = [{"name": k, "value": v} for k, v in (env or {}).items()]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 300, "template": {
            "metadata": {"labels": LABELS},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "securityContext": {"fsGroup": PROBE_UID},
                     "containers": [container],
                     "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *volumes],
                     **(placement or {})}}},
    }


def job_pod(client: Client, name: str, namespace: str) -> Pod:
    [pod] = client.list(Pod, namespace=namespace, labels={"job-name": name})
    return pod


def job_logs(client: Client, name: str, namespace: str) -> str:
    return "".join(client.log(name_of(job_pod(client, name, namespace)), namespace=namespace))


def run_script(client: Client, job: dict[str, Any], *, timeout: float = 180) -> str:
    """Run a `script_job` to completion and return its output; its Job is deleted afterwards.

    A failed run raises JobFailedError with the pod's output, so the report shows the traceback.
    """
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    apply_manifest(client, job)
    try:
        wait_job_complete(client, name, namespace, timeout=timeout)
        return job_logs(client, name, namespace)
    except JobFailedError as e:
        raise JobFailedError(ref=e.ref, path=e.path, status=e.status,
                             reason=f"{e.reason}\n--- output\n{_logs_or_why(client, name, namespace)}") from e
    finally:
        _delete_job(client, name, namespace)


def _logs_or_why(client: Client, name: str, namespace: str) -> str:
    try:
        return job_logs(client, name, namespace)[-4000:]
    except (ApiError, ValueError) as e:
        return f"(no output: {e})"


def _delete_job(client: Client, name: str, namespace: str) -> None:
    delete_if_present(client, Job, name, namespace=namespace, cascade=CascadeType.BACKGROUND)
