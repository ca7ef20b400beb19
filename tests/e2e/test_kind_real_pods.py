"""kind on this machine, built offline: real nodes (systemd, containerd, kubelet v1.33) from the
node image the harness assembles, real pods on the project's base image, networked across nodes,
named by CoreDNS, behind Services, on volumes from the provisioner, under Pod Security
"restricted". Runs in every suite (not only with --cluster=kind): it is the proof that the kind
provider works here at all.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod

from apps.waiting import wait_for
from harness.clusters.deploy import wait_deployment_available, wait_job_complete
from harness.clusters.diagnostics import dump
from harness.clusters.fields import labels_of, name_of
from harness.clusters.kube import apply_manifest, client_for
from harness.clusters.probes import PROBE_UID, restricted_container
from harness.clusters.providers.base import ClusterInfo
from harness.containers.build import ImageSet
from harness.containers.registry import PushedImages
from harness.containers.settings import LABEL_PID, LABEL_SESSION

pytestmark = pytest.mark.e2e

NS = "kind-proof"


@pytest.fixture(scope="module")
def client(kind_cluster: ClusterInfo) -> Client:
    return client_for(kind_cluster.kubeconfig)


@pytest.fixture(autouse=True)
def _dump_on_failure(request: pytest.FixtureRequest, client: Client) -> Iterator[None]:
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before:
        # Printed in teardown: the report's captured output holds events, pod states and logs.
        print(dump(client, [NS, "kube-system", "local-path-storage"]))


@pytest.fixture(scope="module")
def base_image(kind_images: PushedImages, mlops_images: ImageSet) -> str:
    """The base image as the cluster pulls it: from the local registry, by digest."""
    return kind_images.reference(mlops_images.base.rsplit(":", 1)[0])


@pytest.fixture(scope="module")
def proof_namespace(client: Client, base_image: str) -> str:
    apply_manifest(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}})
    # A web server on the worker, behind a Service.
    apply_manifest(client, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{**restricted_container(
                image=base_image, command=["python", "-m", "http.server", "8080", "--directory", "/tmp"]),
                                     "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}],
                     "volumes": [{"name": "tmp", "emptyDir": {}}]}}}})
    apply_manifest(client, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
                            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    wait_deployment_available(client, "web", NS, timeout=180)
    return NS


def test_nodes_are_real_kubelets_on_containerd_one_worker_per_node_group(client: Client,
                                                                         kind_cluster: ClusterInfo) -> None:
    nodes = list(client.list(Node))
    assert len(nodes) == 3, [n.metadata.name for n in nodes]
    # No node container carries a harness session's labels: another session's stale sweep (any
    # pytest or `mlops` run) would take them for a dead session's containers and remove them.
    labels = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .Config.Labels}}",
                                        f"{kind_cluster.name}-control-plane"], capture_output=True, text=True,
                                       check=True).stdout)
    assert LABEL_SESSION not in labels and LABEL_PID not in labels, labels
    # Every node's kube-proxy reached the API server (on a worker it resolves the control plane's
    # name through the pods' resolver) and programmed the Services, the API server's first.
    def services_programmed() -> list[str]:
        rules = {name_of(n): subprocess.run(["docker", "exec", name_of(n), "iptables-save", "-t", "nat"],
                                            capture_output=True, text=True, check=False).stdout for n in nodes}
        return [name for name, text in rules.items() if "default/kubernetes:https" not in text]

    wait_for(lambda: not services_programmed(), what="kube-proxy's Service rules on every node", timeout=120,
             interval=1, describe=lambda: f"missing on {services_programmed()}")
    for node in nodes:
        info = node.status.nodeInfo
        assert info.kubeletVersion == "v1.33.13" and info.containerRuntimeVersion == "containerd://2.1.4"
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    workers = {labels_of(n).get("eks.amazonaws.com/nodegroup", "none"): n for n in nodes
               if "node-role.kubernetes.io/control-plane" not in labels_of(n)}
    assert sorted(workers) == ["cpu", "gpu"]
    assert labels_of(workers["cpu"])["workload"] == "cpu" and not workers["cpu"].spec.taints
    gpu = workers["gpu"]
    assert labels_of(gpu)["workload"] == "gpu"
    assert [(t.key, t.effect) for t in gpu.spec.taints] == [("nvidia.com/gpu", "NoSchedule")]
    # Simulated GPUs: the scheduler counts them, no device plugin hands them out.
    assert (gpu.status.allocatable or {})["nvidia.com/gpu"] == "4"
    assert wait_deployment_available(client, "coredns", "kube-system", timeout=180)
    assert wait_deployment_available(client, "local-path-provisioner", "local-path-storage", timeout=180)


CLIENT_SCRIPT = textwrap.dedent("""\
    import os, urllib.request
    print("uid", os.getuid())
    print("caps", [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])
    try:
        open("/etc/written", "w")
    except OSError as e:
        print("root filesystem refused the write:", e.errno)
    open("/data/claimed", "w").write("ok")
    print("volume writable")
    body = urllib.request.urlopen("http://web.%s.svc.cluster.local/", timeout=10).read()
    print("service answered", len(body))
""")


def test_a_restricted_pod_on_the_other_node_reaches_the_service_by_name_on_a_provisioned_volume(
    client: Client, proof_namespace: str, base_image: str
) -> None:
    apply_manifest(client, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": "claim", "namespace": NS},
                            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}})
    # On the control plane: the request crosses nodes to the web pod on the worker, and the name
    # is resolved by CoreDNS.
    apply_manifest(client, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "client", "namespace": NS},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"fsGroup": PROBE_UID},
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [restricted_container(image=base_image, command=["python", "-c", CLIENT_SCRIPT % NS],
                                                mounts=[{"name": "data", "mountPath": "/data"}])],
            "volumes": [{"name": "tmp", "emptyDir": {}},
                        {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}]}}}})
    wait_job_complete(client, "client", NS, timeout=180)
    [pod] = client.list(Pod, namespace=NS, labels={"job-name": "client"})
    logs = "\n".join(client.log(name_of(pod), namespace=NS))
    assert f"uid {PROBE_UID}" in logs and "caps 0000000000000000" in logs, logs
    assert "root filesystem refused the write: 30" in logs, logs  # EROFS
    assert "volume writable" in logs and "service answered" in logs, logs
    [web] = client.list(Pod, namespace=NS, labels={"app": "web"})
    assert web.spec.nodeName != pod.spec.nodeName


def test_pod_security_restricted_is_enforced_by_the_api_server(client: Client, proof_namespace: str,
                                                                base_image: str) -> None:
    from lightkube import ApiError

    root_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "as-root", "namespace": NS},
                "spec": {"containers": [{"name": "main", "image": base_image, "command": ["true"]}]}}
    with pytest.raises(ApiError, match="violates PodSecurity"):
        apply_manifest(client, root_pod)
    assert client.get(Deployment, "web", namespace=NS).status.availableReplicas == 1
