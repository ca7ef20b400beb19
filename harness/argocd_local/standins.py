"""CRDs a real cluster gets from operators the local one does not run."""

from __future__ import annotations

from typing import Any


def service_monitor_crd() -> dict[str, Any]:
    """The Prometheus operator's ServiceMonitor kind, schemaless: in a real cluster the operator
    installs it; here only the API must exist for Argo CD to sync the object (nothing scrapes)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": "ServiceMonitor", "listKind": "ServiceMonitorList", "plural": "servicemonitors", "singular": "servicemonitor"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }
