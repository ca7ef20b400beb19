"""The local loop on real pods: `mlops up local` on kind, Argo CD running inside the cluster.

The main job runs against the session's kind cluster with a GitOps repository of its own: `pulumi
up` of the local stack installs Argo CD as pods (images built here from the pinned module) and
publishes the tree; Argo CD clones it from a git server on kind's network and syncs every
Application to Synced and Healthy, metrics-server included; the API answers through its Service
from a pod and the batch CronJob's Job writes its partition. Then, in order: the HPA reads CPU
and memory, a push is synced within the environment's poll interval, and `destroy` removes
everything through Argo CD's cascade (run last: later modules get the cluster back empty).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import ConfigMap, Namespace
from pulumi.automation import OpType

from apps.addons import prometheus_crds
from apps.api import workload as api_workload
from apps.waiting import wait_for
from argocd.publish import publish
from argocd.render import render_environment
from environments import Environment, load_environment
from environments.loader import with_overrides
from harness.argocd_local.applications import applications, wait_applications
from harness.argocd_local.loop import application_names
from harness.clusters.diagnostics import dump
from harness.clusters.kube import client_for
from harness.clusters.localstore import remove_store
from harness.clusters.providers.base import ClusterInfo
from harness.clusters.providers.kind import KindProvider
from harness.clusters.scaling import scale_under_load
from harness.containers.build import ImageSet
from harness.containers.platform import argocd_image
from harness.ports import free_port
from harness.stack import PASSPHRASE_ENV, LocalSite, run
from harness.up import StepResult, up
from infra.kube_api import found

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


@dataclass
class Loop:
    env: Environment
    site: LocalSite
    client: Client
    kubeconfig: Path
    summary: list[StepResult]

    def diagnostics(self) -> str:
        tree = render_environment(self.env)
        namespaces = {o.namespace for o in tree.app_objects() if o.namespace}
        return dump(self.client, [self.env.gitops.argocd_namespace, *sorted(namespaces)])


@pytest.fixture(scope="module")
def loop(kind_cluster: ClusterInfo, mlops_images: ImageSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    workdir = tmp_path_factory.mktemp("kind-gitops")
    env = load_environment("local", {"gitops": {"repo_url": str(workdir / "repos" / "local.git")}})
    client = client_for(kind_cluster.kubeconfig)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSPHRASE_ENV, "a passphrase of the test environment")
        state = workdir / "stacks"
        try:
            summary = up(env, provider="kind", cluster=kind_cluster.name, state=state, git_port=free_port())
        except Exception:
            print(Loop(env, LocalSite.of(env), client, kind_cluster.kubeconfig, []).diagnostics())
            raise
        site = LocalSite.of(env, cluster=kind_cluster.name, state=state, in_cluster=True)
        yield Loop(env, site, client, kind_cluster.kubeconfig, summary)


def test_the_main_job_runs_every_step_on_real_pods(loop: Loop) -> None:
    steps = {r.name: r.detail for r in loop.summary}
    assert list(steps) == ["tools", "images", "kind cluster", "pulumi up", "argo cd sync", "inference API",
                           "batch pipeline"], loop.summary
    assert all(r.ok for r in loop.summary), loop.summary
    assert "through ml-inference-service from a pod" in steps["inference API"]
    assert "succeeded" in steps["batch pipeline"]
    # Argo CD is pods in the cluster, on the image built from the pinned module (no host process).
    ns = loop.env.gitops.argocd_namespace
    workloads: list[Deployment | StatefulSet] = [*loop.client.list(Deployment, namespace=ns),
                                                 *loop.client.list(StatefulSet, namespace=ns)]
    assert {w.metadata.name for w in workloads} >= {"argocd-application-controller", "argocd-repo-server",
                                                    "argocd-server", "argocd-redis"}
    images = {c.image for w in workloads for c in w.spec.template.spec.containers}
    assert argocd_image() in images
    names = application_names(loop.env, render_environment(loop.env))
    assert {"local-metrics-server", "local-inference-api"} <= names
    statuses = applications(loop.client, ns)
    assert set(statuses) == names
    assert all(a.sync == "Synced" and a.health == "Healthy" for a in statuses.values()), statuses


def test_the_hpa_reads_cpu_and_memory_from_metrics_server(loop: Loop) -> None:
    ns = api_workload.namespace(loop.env)

    def measured() -> dict[str, int] | None:
        hpa = loop.client.get(HorizontalPodAutoscaler, api_workload.DEPLOYMENT, namespace=ns)
        current = {m.resource.name: m.resource.current.averageUtilization
                   for m in (hpa.status.currentMetrics or [])
                   if m.resource and m.resource.current and m.resource.current.averageUtilization is not None}
        return current if {"cpu", "memory"} <= current.keys() else None

    utilization = wait_for(measured, what="the API's HPA to read CPU and memory utilization", timeout=240,
                           interval=5.0, describe=lambda: str(loop.client.get(
                               HorizontalPodAutoscaler, api_workload.DEPLOYMENT, namespace=ns).status))
    assert utilization["memory"] > 0, utilization
    top = KindProvider().kubectl(loop.site.cluster, "top", "pods", "-n", ns)  # raises on a non-zero exit
    assert api_workload.DEPLOYMENT in top, top


def test_the_apis_servicemonitor_lands_on_the_monitoring_crds_the_tree_installs(loop: Loop) -> None:
    """A fresh cluster has no Prometheus operator CRDs: the add-on brings them, so the API's
    ServiceMonitor is applied for real instead of being skipped."""
    kind = KindProvider()
    crds = kind.kubectl(loop.site.cluster, "get", "crd", "-l", f"app.kubernetes.io/name={prometheus_crds.APP}",
                        "-o", "name").split()
    assert sorted(crds) == sorted(f"customresourcedefinition.apiextensions.k8s.io/{r}.monitoring.coreos.com"
                                  for r in prometheus_crds.RESOURCES)
    monitors = kind.kubectl(loop.site.cluster, "get", "servicemonitors", "-n", api_workload.namespace(loop.env),
                            "-o", "name").split()
    assert monitors == [f"servicemonitor.monitoring.coreos.com/{api_workload.DEPLOYMENT}"], monitors


def test_the_hpa_scales_out_under_load_and_back_in(loop: Loop, tmp_path: Path) -> None:
    """Locust through the node port passes the CPU target: more replicas within the env's bounds,
    the PDB's floor of ready pods held, the `scale` gate passed on that run, then back to the floor."""
    run = scale_under_load(loop.client, loop.env, out_dir=tmp_path / "scale")
    result = run.report.result
    print(f"HPA: {run.floor} -> {run.peak_replicas} replicas, first scale-up after {run.seconds_to_scale_up}s of load, "
          f"back to {run.floor} {run.seconds_to_scale_down:.0f}s after it; Locust: {result.requests_per_s:.0f} req/s, "
          f"{[(name, e.p95_ms, e.p99_ms) for name, e in result.endpoints.items()]}, failures {result.failure_ratio:.4f}")
    assert run.report.passed, [b.message for b in run.report.verdict.breaches]
    assert run.floor < run.peak_replicas <= run.ceiling, run.samples
    assert run.fewest_ready >= loop.env.apps.inference_api.pdb_min_available, run.samples


def test_a_push_is_synced_within_the_poll_interval(loop: Loop) -> None:
    """A publish (what `mlops argocd publish local` does) reaches the cluster without a webhook."""
    # The images the main job pushed stay as they are (by digest): only the API's limit changes.
    changed = with_overrides(loop.site.deployed(), {"apps": {"inference_api": {"batch_limit": 200}}})
    tree = render_environment(changed, repo_url=loop.site.clone_url)
    started = time.monotonic()
    commit = publish(changed, tree).commit
    assert commit, "the change made no commit"
    ns = loop.env.gitops.argocd_namespace
    wait_applications(loop.client, ns, names=application_names(changed, tree), revision=commit,
                      timeout=changed.gitops.poll_interval_s * 4 + 60)

    def applied() -> bool:
        config = loop.client.get(ConfigMap, api_workload.CONFIG_MAP, namespace=api_workload.namespace(changed))
        return (config.data or {}).get("BATCH_LIMIT") == "200"

    wait_for(applied, what="the new BATCH_LIMIT in the API's ConfigMap", timeout=60, interval=1.0)
    latency = time.monotonic() - started
    print(f"push to applied: {latency:.1f}s (poll interval {changed.gitops.poll_interval_s}s)")
    assert latency < changed.gitops.poll_interval_s * 4 + 60


def test_destroy_cascades_through_argocd_in_the_cluster(loop: Loop) -> None:
    commits_before = subprocess.run(["git", "--git-dir", loop.env.gitops.repo_url, "rev-list", "--all"],
                                    capture_output=True, text=True, check=True).stdout.split()
    ns = loop.env.gitops.argocd_namespace
    app_namespaces = {o.name for o in render_environment(loop.env).app_objects() if o.kind == "Namespace"}
    result = run("destroy", lambda: loop.site.stack(loop.kubeconfig).destroy())
    assert (result.summary.resource_changes or {}).get(OpType.DELETE, 0) > 0
    # The cascade ran before Argo CD went: no workload of any app is left, and Argo CD is gone.
    assert not [d.metadata.name for n in app_namespaces for d in loop.client.list(Deployment, namespace=n)]
    assert not list(loop.client.list(Deployment, namespace=ns))
    # What is left is the harness's local store and its keys, removed as `mlops stack destroy` does.
    remove_store(loop.client, loop.env, tree=render_environment(loop.env))

    wait_for(lambda: not any(found(loop.client, Namespace, n) for n in app_namespaces), what=f"the apps' namespaces {sorted(app_namespaces)} gone",
             timeout=300, interval=2.0)
    commits_after = subprocess.run(["git", "--git-dir", loop.env.gitops.repo_url, "rev-list", "--all"],
                                   capture_output=True, text=True, check=True).stdout.split()
    assert commits_after == commits_before  # destroying never rewrites the GitOps history
