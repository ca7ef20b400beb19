"""Containers and pods: resources, the restricted security context, probes, volumes, node placement."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from apps.k8s.meta import AppMeta, BuildError, Obj
from environments.model import GPU_TAINT, Environment, Resources, SizingStrategy, WorkloadClass

# The images' user (apps/Dockerfile, apps/api/Dockerfile): never root.
RUN_AS_USER = 10001
GPU_RESOURCE = "nvidia.com/gpu"
# Used as the GPU node selector when an environment has no gpu node group (the variants
# are then scaled to zero): the label NVIDIA's GPU feature discovery puts on GPU nodes.
FALLBACK_GPU_SELECTOR = {"nvidia.com/gpu.present": "true"}
# What a pod may write outside its read-only root: the emptyDirs (1Gi each at most) and its logs.
EPHEMERAL_STORAGE = {"requests": "256Mi", "limits": "4Gi"}
# Optional Secret an environment may provide (MinIO keys locally); on EKS credentials come
# from Pod Identity or IRSA, so the reference is optional and nothing secret is in git.
S3_CREDENTIALS_SECRET = "s3-credentials"
S3_CREDENTIALS_DIR = "/var/run/secrets/s3"


def resources(*, env: Environment, strategy: SizingStrategy, workload: WorkloadClass, gpus: int = 0) -> Obj:
    """Requests and limits from the environment's sizing strategy (plus GPUs, requested = limit)."""
    sized: Resources = env.resources(strategy, workload)
    out: Obj = {
        "requests": {"cpu": sized.requests.cpu, "memory": sized.requests.memory,
                     "ephemeral-storage": EPHEMERAL_STORAGE["requests"]},
        "limits": {"cpu": sized.limits.cpu, "memory": sized.limits.memory,
                   "ephemeral-storage": EPHEMERAL_STORAGE["limits"]},
    }
    if gpus:
        out["requests"][GPU_RESOURCE] = str(gpus)
        out["limits"][GPU_RESOURCE] = str(gpus)
    return out


def container_security_context() -> Obj:
    """What Pod Security Standards "restricted" asks of a container, and a read-only root."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probe(
    *,
    path: str,
    port: str | int,
    period_s: int = 10,
    failure_threshold: int = 3,
    timeout_s: int = 2,
    initial_delay_s: int = 0,
) -> Obj:
    probe: Obj = {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failure_threshold,
    }
    if initial_delay_s:
        probe["initialDelaySeconds"] = initial_delay_s
    return probe


def probes(*, port: str | int, live: str = "/healthz", ready: str = "/readyz", startup_budget_s: int = 120) -> Obj:
    """Startup (a slow model load is not a crash), liveness and readiness on one port."""
    period = 5
    return {
        "startupProbe": http_probe(path=live, port=port, period_s=period, failure_threshold=startup_budget_s // period),
        "livenessProbe": http_probe(path=live, port=port, period_s=10, failure_threshold=3),
        "readinessProbe": http_probe(path=ready, port=port, period_s=5, failure_threshold=2),
    }


def env_from(*, config_map: str) -> list[Obj]:
    return [{"configMapRef": {"name": config_map}}]


def aws_environ(env: Environment) -> dict[str, str]:
    """Region for boto3 (Pod Identity injects credentials, not the region); nothing for local."""
    if env.aws is None:
        return {}
    return {"AWS_REGION": env.aws.region, "AWS_DEFAULT_REGION": env.aws.region}


def s3_credentials_volume() -> Obj:
    """The optional S3 credentials Secret as a file (a key ``credentials`` in AWS INI format).

    Files, not environment variables: they do not leak into ``env`` dumps or child processes.
    Absent on EKS, where boto3 falls through to Pod Identity / IRSA credentials.
    """
    return {
        "name": "s3-credentials",
        "secret": {"secretName": S3_CREDENTIALS_SECRET, "optional": True, "defaultMode": 0o440},
    }

def container(
    *,
    name: str,
    image: str,
    pull_policy: str,
    args: Sequence[str],
    resources: Obj,
    config_map: str,
    env: Mapping[str, str] | None = None,
    ports: Mapping[str, int] | None = None,
    probes: Obj | None = None,
    volume_mounts: Iterable[tuple[str, str]] = (),
) -> Obj:
    """One container: ``python -m <module>`` of our images, config from a ConfigMap."""
    if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
        raise BuildError(f"container {name}: image {image!r} is not pinned to a tag")
    out: Obj = {
        "name": name,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["python", "-m"],
        "args": list(args),
        "envFrom": env_from(config_map=config_map),
    }
    variables = {"AWS_SHARED_CREDENTIALS_FILE": f"{S3_CREDENTIALS_DIR}/credentials", **(env or {})}
    out["env"] = [{"name": k, "value": v} for k, v in variables.items()]
    if ports:
        out["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()]
    out["resources"] = resources
    if probes:
        out.update(probes)
    out["securityContext"] = container_security_context()
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "s3-credentials", "mountPath": S3_CREDENTIALS_DIR, "readOnly": True},
    ] + [{"name": v, "mountPath": p} for v, p in volume_mounts]
    out["volumeMounts"] = mounts
    return out


def tmp_volume(size: str = "1Gi") -> Obj:
    # The root filesystem is read-only: /tmp is the one writable scratch space.
    return {"name": "tmp", "emptyDir": {"sizeLimit": size}}


def config_checksum(data: Mapping[str, str]) -> str:
    """Pod-template annotation value: a ConfigMap change rolls the pods that read it."""
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()


def pod_spec(
    *,
    service_account: str,
    containers: Sequence[Obj],
    volumes: Sequence[Obj] = (),
    restart_policy: Literal["Always", "Never", "OnFailure"] = "Always",
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Obj] = (),
    affinity: Obj | None = None,
    termination_grace_s: int = 30,
) -> Obj:
    spec: Obj = {
        "serviceAccountName": service_account,
        # Pod Identity and IRSA inject their own projected token; the API token is not needed.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": termination_grace_s,
        "containers": list(containers),
        "volumes": [tmp_volume(), s3_credentials_volume(), *volumes],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = list(tolerations)
    if affinity:
        spec["affinity"] = affinity
    return spec


def pod_template(*, meta: AppMeta, spec: Obj, annotations: Mapping[str, str] | None = None) -> Obj:
    out: Obj = {"metadata": {"labels": meta.labels()}, "spec": spec}
    if annotations:
        out["metadata"]["annotations"] = dict(annotations)
    return out


def gpu_tolerations() -> list[Obj]:
    return [{"key": GPU_TAINT.key, "operator": "Equal", "value": GPU_TAINT.value, "effect": GPU_TAINT.effect}]


def gpu_node_selector(env: Environment) -> dict[str, str]:
    """The labels shared by every gpu node group of the env (the fallback when it has none)."""
    groups = list(env.gpu_node_groups.values())
    if not groups:
        return dict(FALLBACK_GPU_SELECTOR)
    common = {k: v for k, v in groups[0].labels.items() if all(g.labels.get(k) == v for g in groups)}
    if not common:
        raise BuildError(
            f"env {env.name}: node_groups of kind gpu share no label; expected a common label "
            "(e.g. accelerator: nvidia) to select GPU nodes"
        )
    return common


def cpu_node_selector(env: Environment) -> dict[str, str]:
    groups = [g for g in env.node_groups.values() if g.kind == "cpu"]
    return {k: v for k, v in groups[0].labels.items() if all(g.labels.get(k) == v for g in groups)}
