"""metrics-server (resource metrics API): what the HPAs read and `kubectl top` shows.

EKS ships none, so without it every HPA of ours reports "unable to get metrics" and never
scales. Objects follow the project's upstream layout (kube-system, APIService
v1beta1.metrics.k8s.io), with the security context and probes every workload of ours has.

    >>> from environments import load_environment
    >>> sorted({o["kind"] for o in objects(load_environment("local"))})[:3]
    ['APIService', 'ClusterRole', 'ClusterRoleBinding']
"""

from __future__ import annotations

from apps import k8s
from apps.k8s import AppMeta, Obj
from environments.model import Environment

APP = "metrics-server"
NAMESPACE = "kube-system"  # where the aggregated API's authentication config is readable
SERVICE_ACCOUNT = "metrics-server"
PORT = 10250
RUN_AS_USER = 65534  # nobody: the image is a static binary on scratch
RBAC = "rbac.authorization.k8s.io/v1"


def namespace(env: Environment) -> str:
    return NAMESPACE


def image(env: Environment) -> str:
    addon = env.addons.metrics_server
    return f"{addon.image}:{addon.version}"


def args(env: Environment) -> list[str]:
    out = [
        "--cert-dir=/tmp",
        f"--secure-port={PORT}",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--kubelet-use-node-status-port",
        # The HPA syncs every 15 s: fresher metrics than that are not read.
        "--metric-resolution=15s",
    ]
    if env.addons.metrics_server.kubelet_insecure_tls:
        out.append("--kubelet-insecure-tls")
    return out


def _probe(path: str, *, period_s: int, failures: int) -> Obj:
    probe = k8s.http_probe(path=path, port="https", period_s=period_s, failure_threshold=failures)
    probe["httpGet"]["scheme"] = "HTTPS"
    return probe


def _container(env: Environment) -> Obj:
    security = {**k8s.container_security_context(), "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER}
    return {
        "name": APP,
        "image": image(env),
        "imagePullPolicy": "IfNotPresent",
        "args": args(env),
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "200Mi", "ephemeral-storage": "16Mi"},
            "limits": {"cpu": "500m", "memory": "400Mi", "ephemeral-storage": "64Mi"},
        },
        "startupProbe": _probe("/livez", period_s=5, failures=24),
        "livenessProbe": _probe("/livez", period_s=10, failures=3),
        "readinessProbe": _probe("/readyz", period_s=10, failures=3),
        "securityContext": security,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _binding(meta: AppMeta, kind: str, name: str, role_kind: str, role: str, namespace: str | None = None) -> Obj:
    return {
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": k8s.metadata(meta=meta, name=name, namespace=namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}],
    }


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    """`role_arn` is never used: metrics-server calls no AWS API."""
    if not env.addons.metrics_server.enabled:
        return []
    meta = AppMeta(env=env, name=APP, component="metrics")
    ns = NAMESPACE
    reader = {**meta.labels(), **{f"rbac.authorization.k8s.io/aggregate-to-{r}": "true" for r in ("view", "edit", "admin")}}
    # It reads the API (nodes, pods) with its own token: the one workload of ours that mounts it.
    replicas = env.addons.metrics_server.replicas
    few = [("deployment-replicas", "one replica where the environment says so (local): a missed scrape only "
            "delays the HPAs, and two cores have no room for a second")] if replicas < 2 else []
    skips = k8s.workload_skips(env, kube_score=few, checkov=[
        ("CKV_K8S_38", "metrics-server reads nodes and pods from the API with its service account token"),
    ])
    spec = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": True,
        "priorityClassName": "system-cluster-critical",
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": {"kubernetes.io/os": "linux", **k8s.cpu_node_selector(env)},
        "containers": [_container(env)],
        "volumes": [k8s.tmp_volume("64Mi")],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": k8s.metadata(meta=meta, name=APP, namespace=ns, annotations=skips),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": meta.selector()},
            # The API must stay served through a rollout: the new pod is ready before the old goes.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": k8s.pod_template(meta=meta, spec=spec),
        },
    }
    if replicas > 1:
        spec["affinity"] = k8s.spread(meta)
    # No IAM role, in IRSA environments too: it calls no AWS API.
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": k8s.metadata(meta=meta, name=SERVICE_ACCOUNT, namespace=ns)}
    budget = [k8s.pod_disruption_budget(meta=meta, name=APP, namespace=ns)] if replicas > 1 else []
    return [
        account,
        *budget,
        {"apiVersion": RBAC, "kind": "ClusterRole",
         "metadata": {"name": "system:aggregated-metrics-reader", "labels": reader},
         "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": RBAC, "kind": "ClusterRole",
         "metadata": k8s.metadata(meta=meta, name="system:metrics-server", namespace=None),
         "rules": [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]},
        _binding(meta, "RoleBinding", "metrics-server-auth-reader", "Role", "extension-apiserver-authentication-reader",
                 ns),
        _binding(meta, "ClusterRoleBinding", "metrics-server:system:auth-delegator", "ClusterRole",
                 "system:auth-delegator"),
        _binding(meta, "ClusterRoleBinding", "system:metrics-server", "ClusterRole", "system:metrics-server"),
        k8s.service(meta=meta, name=APP, namespace=ns, ports={"https": (443, "https")}),
        deployment,
        k8s.network_policy(
            meta=meta, name=f"{APP}-allow", namespace=ns, pod_selector=meta.selector(),
            # The API server (host network: any address) calls the aggregated API.
            ingress=[{"ports": [{"protocol": "TCP", "port": PORT}]}],
            # Kubelets' stats (their status port) and the API server.
            egress=[{"ports": [{"protocol": "TCP", "port": PORT}, {"protocol": "TCP", "port": 443},
                               {"protocol": "TCP", "port": 6443}]}],
        ),
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": k8s.metadata(meta=meta, name="v1beta1.metrics.k8s.io", namespace=None),
         "spec": {"service": {"name": APP, "namespace": ns, "port": 443}, "group": "metrics.k8s.io",
                  "version": "v1beta1", "insecureSkipTLSVerify": True,
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
    ]
