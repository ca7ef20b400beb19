"""NetworkPolicies: default deny, and what a pipeline's pods may reach and be reached by."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from apps.k8s.meta import AppMeta, BuildError, Obj, metadata
from environments.model import Environment


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
