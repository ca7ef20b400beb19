"""Typed builders for the Kubernetes objects every app's workload spec is made of.

Objects are plain ``dict``s in the shape the API server accepts (serialised by
``argocd.render``); each builder is a pure function with keyword-only arguments, so the
recommended labels, the restricted security context, probes and resources are defined
here once and nowhere else. One module per idea, all names reachable as ``k8s.<name>``:

- ``meta``: who an object belongs to (``AppMeta``, labels, metadata) and the scanners' skips;
- ``pods``: containers and pods (resources, security context, probes, volumes, placement);
- ``workloads``: Deployments, budgets, autoscalers, Jobs, CronJobs, Services, ConfigMaps, accounts;
- ``namespaces``: an app's namespace and its guard rails (quota, limits, the bundle of both);
- ``network``: NetworkPolicies.

    >>> from environments import load_environment
    >>> env = load_environment("local")
    >>> meta = AppMeta(env=env, name="inference-api", component="api")
    >>> meta.labels()["app.kubernetes.io/managed-by"]
    'mlops-toolkit'
"""

from apps.k8s.meta import (
    CHECKOV_SKIP, KUBE_SCORE_IGNORE, KUBE_SCORE_WHY, MANAGED_BY, PART_OF, SYNC_WAVE, AppMeta, BuildError, Obj,
    checkov_skips, kube_score_ignores, metadata, workload_skips,
)
from apps.k8s.namespaces import PodBudget, largest, limit_range, namespace, namespace_bundle, resource_quota
from apps.k8s.network import default_deny, egress_rules, metrics_ingress, network_policy, pipeline_policy
from apps.k8s.pods import (
    EPHEMERAL_STORAGE, FALLBACK_GPU_SELECTOR, GPU_RESOURCE, RUN_AS_USER, S3_CREDENTIALS_DIR, S3_CREDENTIALS_SECRET,
    aws_environ, config_checksum, container, container_security_context, cpu_node_selector, env_from,
    gpu_node_selector, gpu_tolerations, http_probe, pod_security_context, pod_spec, pod_template, probes, resources,
    s3_credentials_volume, tmp_volume,
)
from apps.k8s.workloads import (
    HPA_OWNS_REPLICAS, config_map, cron_job, deployment, horizontal_pod_autoscaler, job_spec, persistent_volume_claim,
    pod_disruption_budget, service, service_account, spread,
)

__all__ = [
    "CHECKOV_SKIP", "EPHEMERAL_STORAGE", "FALLBACK_GPU_SELECTOR", "GPU_RESOURCE", "HPA_OWNS_REPLICAS",
    "KUBE_SCORE_IGNORE", "KUBE_SCORE_WHY", "MANAGED_BY", "PART_OF", "RUN_AS_USER", "S3_CREDENTIALS_DIR",
    "S3_CREDENTIALS_SECRET", "SYNC_WAVE", "AppMeta", "BuildError", "Obj", "PodBudget",
    "aws_environ", "checkov_skips", "config_checksum", "config_map", "container", "container_security_context",
    "cpu_node_selector", "cron_job", "default_deny", "deployment", "egress_rules", "env_from", "gpu_node_selector",
    "gpu_tolerations", "horizontal_pod_autoscaler", "http_probe", "job_spec", "kube_score_ignores", "largest",
    "limit_range", "metadata", "metrics_ingress", "namespace", "namespace_bundle", "network_policy",
    "persistent_volume_claim", "pipeline_policy", "pod_disruption_budget", "pod_security_context", "pod_spec",
    "pod_template", "probes", "resource_quota", "resources", "s3_credentials_volume", "service", "service_account",
    "spread", "tmp_volume", "workload_skips",
]
