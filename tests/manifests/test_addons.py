"""Platform add-ons in the tree (metrics-server, the monitoring CRDs, the cloud charts), and Argo CD's
own install as local clusters run it."""

from __future__ import annotations

import pytest
import yaml

from apps.addons import charts, metrics_server, prometheus_crds
from apps.api import workload as api
from argocd import catalog, validate
from argocd.render import RenderedTree
from environments import load_environment
from environments.loader import overrides_of
from harness.argocd_local import upstream
from harness.clusters.nodes import for_simulated_nodes
from harness.toolchain import load_manifest
from tests.manifests.conftest import ENVS, SAMPLE_CLOUD, env_with, render

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
    serving = [a for a in catalog.APPS if a.name != "model-bootstrap"]  # the Jobs that train need no metrics
    assert waves["applications/metrics-server.yaml"] < min(waves[f"applications/{a.name}.yaml"] for a in serving)
    assert waves["applications/model-bootstrap.yaml"] < min(waves[f"applications/{a.name}.yaml"] for a in serving)
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


@pytest.mark.parametrize("name", ENVS)
def test_one_argocd_version_for_the_cloud_chart_the_local_build_and_validation(name: str) -> None:
    env = load_environment(name)
    built = load_manifest().groups["argocd"].version
    assert env.gitops.argocd_version == built
    assert validate.crd_sources(env)["argoproj.io"].version == built


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


# ---------------------------------------------------------------- chart add-ons (cloud) and CRDs


def _chart_source(tree: RenderedTree, name: str) -> dict:
    return yaml.safe_load(tree[f"applications/{name}.yaml"])["spec"]["sources"][0]


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_cloud_environments_get_every_chart_addon_pinned_before_the_apps(name: str,
                                                                         trees: dict[str, RenderedTree]) -> None:
    tree, env = trees[name], load_environment(name)
    for chart in charts.CHARTS:
        if chart.name == "nvidia-device-plugin" and not env.has_gpu:
            continue
        source = _chart_source(tree, chart.name)
        assert (source["repoURL"], source["chart"]) == (chart.repo_url, chart.chart)
        assert source["targetRevision"] == chart.settings(env).chart_version
        app = yaml.safe_load(tree[f"applications/{chart.name}.yaml"])
        assert app["spec"]["project"] == f"ml-platform-{name}-addons"
        assert int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < \
            min(int(yaml.safe_load(tree[f"applications/{a.name}.yaml"])["metadata"]["annotations"]
                    ["argocd.argoproj.io/sync-wave"]) for a in catalog.APPS)
    # The fraud pipeline's shared volume gets a class bound to the stack's file system (seed 002).
    efs = yaml.safe_load(tree["apps/aws-efs-csi-driver/storageclass-efs-sc.yaml"])
    assert efs["metadata"]["name"] == env.storage.shared_volume.storage_class
    assert efs["parameters"]["fileSystemId"] == SAMPLE_CLOUD.file_system_id
    assert efs["parameters"]["provisioningMode"] == "efs-ap"
    gp3 = yaml.safe_load(tree["apps/aws-ebs-csi-driver/storageclass-gp3.yaml"])
    assert gp3["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert gp3["parameters"]["type"] == "gp3" and gp3["parameters"]["encrypted"] == "true"
    assert _chart_source(tree, "aws-load-balancer-controller")["helm"]["valuesObject"]["vpcId"] == SAMPLE_CLOUD.vpc_id


def test_chart_addons_are_cloud_only_and_each_can_be_turned_off(trees: dict[str, RenderedTree]) -> None:
    local = trees["local"]
    assert not [p for p in local if any(p == f"applications/{c.name}.yaml" for c in charts.CHARTS)]
    assert "bootstrap/addons-appproject.yaml" not in local
    off = render(env_with("prod", addons={"aws_load_balancer_controller": {"enabled": False}}))
    assert "applications/aws-load-balancer-controller.yaml" not in off
    assert "applications/aws-ebs-csi-driver.yaml" in off
    dev = load_environment("dev")
    no_gpu = render(dev.model_copy(update={"node_groups": {n: g for n, g in dev.node_groups.items() if g.kind == "cpu"}}))
    assert "applications/nvidia-device-plugin.yaml" not in no_gpu


def test_the_api_secrets_come_from_secrets_manager_through_one_store(trees: dict[str, RenderedTree]) -> None:
    prod, env = trees["prod"], load_environment("prod")
    assert env.aws is not None
    secret = yaml.safe_load(prod["apps/inference-api/externalsecret-ml-inference-secrets.yaml"])
    assert secret["metadata"]["namespace"] == env.apps.inference_api.namespace
    assert secret["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": charts.SECRET_STORE}
    assert secret["spec"]["dataFrom"] == [{"extract": {"key": f"{env.aws.cluster.name}/inference-api"}}]
    store = yaml.safe_load(prod[f"apps/external-secrets/clustersecretstore-{charts.SECRET_STORE}.yaml"])
    # Only the API's namespace may read through it.
    assert store["spec"]["conditions"] == [{"namespaces": [env.apps.inference_api.namespace]}]
    pod = yaml.safe_load(prod["apps/inference-api/deployment-ml-inference-api.yaml"])["spec"]["template"]["spec"]
    assert {"name": api.SECRETS, "secret": {"secretName": api.SECRETS, "optional": True, "defaultMode": 0o440}} \
        in pod["volumes"]
    assert {"name": api.SECRETS, "mountPath": api.SECRETS_DIR} in pod["containers"][0]["volumeMounts"]
    assert not any("secretKeyRef" in str(c.get("env")) for c in pod["containers"]), "files, never env vars"
    for tree in (trees["local"], render(env_with("prod", addons={"external_secrets": {"enabled": False}}))):
        assert not [o for o in tree.objects if o.kind in ("ExternalSecret", "ClusterSecretStore")]
        pod = next(o for o in tree.objects if o.kind == "Deployment" and o.app == "inference-api").manifest
        assert api.SECRETS not in str(pod)


@pytest.mark.parametrize("name", ENVS)
def test_every_cluster_gets_the_monitoring_crds_its_servicemonitors_need(name: str,
                                                                         trees: dict[str, RenderedTree]) -> None:
    tree, env = trees[name], load_environment(name)
    crds = {o.name: o for o in tree.objects if o.kind == "CustomResourceDefinition"}
    assert set(crds) == {f"{r}.monitoring.coreos.com" for r in prometheus_crds.RESOURCES}
    # The very version the tree's ServiceMonitors are validated against.
    assert all(o.manifest["metadata"]["annotations"]["operator.prometheus.io/version"] ==
               env.addons.prometheus_crds.version.removeprefix("v") for o in crds.values())
    waves = {o.path: int(o.manifest["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
             for o in tree.objects if o.path.startswith("applications/")}
    assert waves["applications/prometheus-operator-crds.yaml"] < waves["applications/inference-api.yaml"]
    assert any(o.kind == "ServiceMonitor" for o in tree.objects)
