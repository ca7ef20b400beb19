"""The Prometheus operator's monitoring CRDs (ServiceMonitor, PodMonitor, PrometheusRule), so
the apps' ServiceMonitors apply on a fresh cluster: EKS and kind ship none. The very files of
the operator's pinned Go module (`addons.prometheus_crds.version`), the same module the tree's
ServiceMonitors are validated against; nothing of them is copied into this repository.
"""

from __future__ import annotations

from apps.addons.upstream import load_all, module_dir
from apps.k8s import AppMeta, BuildError, Obj
from environments.model import Environment

APP = "prometheus-operator-crds"
MODULE = "github.com/prometheus-operator/prometheus-operator"
CRD_DIR = "example/prometheus-operator-crd"
# What a cluster needs to accept monitoring objects; the operator itself (and Prometheus) is the
# platform team's choice, so neither is installed here.
RESOURCES = ("servicemonitors", "podmonitors", "prometheusrules")
# Cluster-scoped objects only; the Application needs a destination all the same.
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = None


def namespace(env: Environment) -> str:
    return NAMESPACE


def crd_files() -> list[str]:
    return [f"{CRD_DIR}/monitoring.coreos.com_{r}.yaml" for r in RESOURCES]


def objects(env: Environment, *, role_arn: str | None = None) -> list[Obj]:
    """`role_arn` is never used: CRDs run nothing."""
    settings = env.addons.prometheus_crds
    if not settings.enabled:
        return []
    root = module_dir(MODULE, settings.version)
    meta = AppMeta(env=env, name=APP, component="crds")
    out = []
    for name in crd_files():
        path = root / name
        if not path.is_file():
            raise BuildError(f"addons.prometheus_crds.version {settings.version}: {MODULE} has no {name}")
        [crd] = load_all(path.read_text(encoding="utf-8"))
        crd["metadata"]["labels"] = {**crd["metadata"].get("labels", {}), **meta.labels()}
        crd["metadata"].pop("creationTimestamp", None)
        out.append(crd)
    return out
