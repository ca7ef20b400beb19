"""Platform add-ons in the tree (metrics-server), and Argo CD's own install as local clusters run it."""

from __future__ import annotations

import pytest

from apps.addons import metrics_server
from argocd import catalog
from argocd.render import RenderedTree
from environments import load_environment
from environments.loader import overrides_of
from harness.argocd_local import upstream
from harness.clusters.nodes import for_simulated_nodes
from harness.toolchain import load_manifest
from tests.manifests.conftest import ENVS, env_with, render

pytestmark = pytest.mark.manifests


def _addon_objects(tree: RenderedTree) -> dict[str, dict]:
    return {f"{o.kind}/{o.name}": o.manifest for o in tree.objects if o.app == metrics_server.APP}


@pytest.mark.parametrize("name", ENVS)
def test_every_environment_gets_metrics_server_before_its_apps(name: str, trees: dict[str, RenderedTree]) -> None:
    tree, env = trees[name], load_environment(name)
    objects = _addon_objects(tree)
    service = objects["APIService/v1beta1.metrics.k8s.io"]["spec"]["service"]
    assert (service["name"], service["namespace"]) == ("metrics-server", "kube-system")
    [container] = objects["Deployment/metrics-server"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{env.addons.metrics_server.image}:{env.addons.metrics_server.version}"
    assert ("--kubelet-insecure-tls" in container["args"]) == (name == "local")  # EKS signs kubelet certificates
    app = next(o.manifest for o in tree.objects if o.path == "applications/metrics-server.yaml")
    waves = {o.path: int(o.manifest["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
             for o in tree.objects if o.path.startswith("applications/")}
    assert waves["applications/metrics-server.yaml"] < min(waves[f"applications/{a.name}.yaml"] for a in catalog.APPS)
    assert app["spec"]["destination"]["namespace"] == "kube-system"
    # Least privilege: read-only RBAC on pods and nodes, no IAM role in any identity mode.
    rules = objects["ClusterRole/system:metrics-server"]["rules"]
    assert {v for r in rules for v in r["verbs"]} <= {"get", "list", "watch"}
    assert "annotations" not in objects["ServiceAccount/metrics-server"]["metadata"] or \
        "eks.amazonaws.com/role-arn" not in objects["ServiceAccount/metrics-server"]["metadata"]["annotations"]
    replicas = objects["Deployment/metrics-server"]["spec"]["replicas"]
    assert replicas == env.addons.metrics_server.replicas
    assert ("PodDisruptionBudget/metrics-server" in objects) == (replicas > 1)
    project = next(o.manifest for o in tree.objects if o.path == "bootstrap/appproject.yaml")["spec"]
    assert {"group": "apiregistration.k8s.io", "kind": "APIService"} in project["clusterResourceWhitelist"]


def test_local_builds_the_metrics_server_version_the_toolchain_pins() -> None:
    assert load_environment("local").addons.metrics_server.version == load_manifest().groups["metrics-server"].version


def test_an_addon_turned_off_leaves_the_tree() -> None:
    tree = render(env_with("prod", addons={"metrics_server": {"enabled": False}}))
    assert not _addon_objects(tree)
    assert "applications/metrics-server.yaml" not in tree
    simulated = for_simulated_nodes(load_environment("local"))
    assert not _addon_objects(render(simulated))
    # What the env sets beyond its file travels to processes that reload it by name (the publish step).
    assert overrides_of(simulated) == {"addons": {"metrics_server": {"enabled": False}}}
    assert load_environment("local", overrides_of(simulated)) == simulated


def test_argocd_in_cluster_install_runs_local_images_without_dex() -> None:
    images = {"argocd": "mlops.local/argocd:test", "redis": "mlops.local/redis:test"}
    docs = upstream.install(namespace="gitops", images=images, settings={"timeout.reconciliation": "15s"})
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("StatefulSet", "argocd-application-controller") in names
    assert {("Deployment", n) for n in ("argocd-repo-server", "argocd-server", "argocd-redis")} <= names
    assert not [n for _, n in names if "dex" in n]
    for doc in docs:
        scoped = doc["kind"] in upstream.CLUSTER_SCOPED
        assert ("namespace" in doc["metadata"]) != scoped, (doc["kind"], doc["metadata"]["name"])
        assert all(s.get("namespace", "gitops") == "gitops" for s in doc.get("subjects") or [])
        pod = doc.get("spec", {}).get("template", {}).get("spec") or {}
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            assert container["image"] in images.values() and container["imagePullPolicy"] == "IfNotPresent"
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cm")
    assert cm["data"]["timeout.reconciliation"] == "15s"
    with pytest.raises(upstream.UpstreamManifestError, match="no local build"):
        upstream.install(namespace="gitops", images={"argocd": "x:1"}, settings={})
