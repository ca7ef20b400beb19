"""Typed builders for the Kubernetes objects every app's workload spec is made of.

Objects are plain ``dict``s in the shape the API server accepts (serialised by
``argocd.render``); each builder is a pure function with keyword-only arguments, so the
recommended labels, the restricted security context, probes and resources are defined
here once and nowhere else.

    >>> from environments import load_environment
    >>> env = load_environment("local")
    >>> meta = AppMeta(env=env, name="inference-api", component="api")
    >>> meta.labels()["app.kubernetes.io/managed-by"]
    'mlops-toolkit'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from environments.model import GPU_TAINT, Autoscaling, Environment, Resources, SizingStrategy, WorkloadClass
from environments.quantities import cpu_millis, format_cpu, format_memory, memory_bytes

Obj = dict[str, Any]

PART_OF = "ml-platform"
MANAGED_BY = "mlops-toolkit"
# The images' user (apps/Dockerfile, apps/api/Dockerfile): never root.
RUN_AS_USER = 10001
GPU_RESOURCE = "nvidia.com/gpu"
# Used as the GPU node selector when an environment has no gpu node group (the variants
# are then scaled to zero): the label NVIDIA's GPU feature discovery puts on GPU nodes.
FALLBACK_GPU_SELECTOR = {"nvidia.com/gpu.present": "true"}
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
CHECKOV_SKIP = "checkov.io/skip{n}"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_WHY = "mlops-toolkit.io/kube-score-ignore-why"  # kube-score's annotation has no room for reasons
# What a pod may write outside its read-only root: the emptyDirs (1Gi each at most) and its logs.
EPHEMERAL_STORAGE = {"requests": "256Mi", "limits": "4Gi"}
# Optional Secret an environment may provide (MinIO keys locally); on EKS credentials come
# from Pod Identity or IRSA, so the reference is optional and nothing secret is in git.
S3_CREDENTIALS_SECRET = "s3-credentials"
S3_CREDENTIALS_DIR = "/var/run/secrets/s3"


class BuildError(ValueError):
    """A workload spec that cannot be built from the environment; the message names where."""


@dataclass(frozen=True)
class AppMeta:
    """Who an object belongs to: the source of every label and selector of one component."""

    env: Environment
    name: str  # app.kubernetes.io/name: the app ("inference-api", "fraud-pipeline")
    component: str  # app.kubernetes.io/component: the part of the app ("api", "data-gather")
    extra: Mapping[str, str] = field(default_factory=dict)

    def selector(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": self.name,
            "app.kubernetes.io/instance": f"{self.name}-{self.env.name}",
            "app.kubernetes.io/component": self.component,
        }

    def labels(self) -> dict[str, str]:
        return {
            **self.selector(),
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            **self.extra,
        }

    def app_selector(self) -> dict[str, str]:
        """Every component of this app in this environment (for policies spanning stages)."""
        return {k: v for k, v in self.selector().items() if k != "app.kubernetes.io/component"}

    def with_component(self, component: str, **extra: str) -> AppMeta:
        return AppMeta(env=self.env, name=self.name, component=component, extra={**self.extra, **extra})


def metadata(*, meta: AppMeta, name: str, namespace: str | None, annotations: Mapping[str, str] | None = None) -> Obj:
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = meta.labels()
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def checkov_skips(*reasons: tuple[str, str]) -> dict[str, str]:
    """Skip annotations for checks the project has justified: (check id, why)."""
    return {CHECKOV_SKIP.format(n=i): f"{check}={why}" for i, (check, why) in enumerate(reasons, start=1)}


def kube_score_ignores(*reasons: tuple[str, str]) -> dict[str, str]:
    """kube-score's ignore annotation for tests the project has justified: (test id, why)."""
    if not reasons:
        return {}
    return {KUBE_SCORE_IGNORE: ",".join(test for test, _ in reasons),
            KUBE_SCORE_WHY: "\n".join(f"{test}: {why}" for test, why in reasons)}


# ---------------------------------------------------------------- containers and pods


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


def workload_skips(env: Environment, *, kube_score: Sequence[tuple[str, str]] = (),
                   checkov: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """checkov checks and kube-score tests a workload of ours fails on purpose, with the reason."""
    reasons = [
        (
            "CKV_K8S_43",
            "images are pinned by immutable tag (release or content hash); the digest is only known after the push",
        ),
        *checkov,
    ]
    scores = list(kube_score)
    if env.images.pull_policy != "Always":
        why = (f"pull policy {env.images.pull_policy} comes from the environment: "
               "tags are immutable, and local images live on the node")
        reasons.append(("CKV_K8S_15", why))
        scores.append(("container-image-pull-policy", why))
    return {**checkov_skips(*reasons), **kube_score_ignores(*scores)}


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


# ---------------------------------------------------------------- workloads


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


# ---------------------------------------------------------------- namespaces and their guard rails


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


# ---------------------------------------------------------------- network


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


def pipeline_policy(*, meta: AppMeta, app: str, ns: str, env: Environment, metrics_port: int) -> Obj:
    """A pipeline's pods: scraped on their metrics port; out to DNS, S3 and the store only."""
    return network_policy(meta=meta, name=f"{app}-allow", namespace=ns, pod_selector=meta.app_selector(),
                          ingress=[metrics_ingress(metrics_port)], egress=egress_rules(env))


def default_deny(*, meta: AppMeta, namespace: str) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(meta=meta, name="default-deny", namespace=namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def egress_rules(env: Environment) -> list[Obj]:
    """DNS, HTTPS (S3, STS, the model registry) and, where configured, the S3-compatible endpoint."""
    rules: list[Obj] = [
        {
            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]
    if env.aws and env.aws.cluster.identity == "pod_identity":
        # The EKS Pod Identity agent's link-local endpoint.
        rules.append({"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]})
    endpoint = env.storage.endpoint_url
    if endpoint:
        match = re.match(r"^(https?)://[^/:]+(?::([0-9]+))?", endpoint)
        if not match:
            raise BuildError(f"env {env.name}: storage.endpoint_url {endpoint!r} is not an http(s) URL")
        port = int(match.group(2) or (443 if match.group(1) == "https" else 80))
        if port != 443:
            rules.append({"ports": [{"protocol": "TCP", "port": port}]})
    return rules


def network_policy(
    *,
    meta: AppMeta,
    name: str,
    namespace: str,
    pod_selector: Mapping[str, str],
    ingress: Sequence[Obj],
    egress: Sequence[Obj],
) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(meta=meta, name=name, namespace=namespace),
        "spec": {
            "podSelector": {"matchLabels": dict(pod_selector)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": list(ingress),
            "egress": list(egress),
        },
    }


def metrics_ingress(port: int | str) -> Obj:
    """Prometheus scrapes from any namespace (its own namespace differs per cluster)."""
    return {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": port}]}
