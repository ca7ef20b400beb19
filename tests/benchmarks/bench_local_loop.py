"""The local loop on kind, measured: Argo CD's in-cluster sync latency after a push, and the HPA
under Locust (time to scale up and back down, latency and throughput while it scales).

    .venv/bin/mlops up local --provider kind            # once: the cluster, Argo CD and the apps
    .venv/bin/python tests/benchmarks/bench_local_loop.py [--rounds 3]

Publishes to the `local` environment's own GitOps repository (a change of the API's reload
interval, then back), so the cluster ends as it started. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lightkube.resources.core_v1 import ConfigMap

from apps.api import workload as api_workload
from apps.waiting import wait_for
from argocd.publish import publish
from argocd.render import render_environment
from environments import load_environment
from harness.argocd_local.applications import wait_applications
from harness.argocd_local.loop import application_names
from harness.clusters.kube import client_for
from harness.clusters.providers import KindProvider
from harness.clusters.scaling import scale_under_load
from harness.stack import LocalSite


def push_latency(client, env, clone_url: str, interval: float) -> float:
    """Seconds from a publish to the API's ConfigMap showing it, through Argo CD in the cluster."""
    changed = load_environment(env.name, {"apps": {"inference_api": {"reload_interval_s": interval}}})
    tree = render_environment(changed, repo_url=clone_url)
    started = time.monotonic()
    commit = publish(changed, tree).commit
    if commit is None:
        raise SystemExit("the change made no commit: is the repository already at this interval?")
    wait_applications(client, env.gitops.argocd_namespace, names=application_names(changed, tree), revision=commit,
                      timeout=600)

    def applied() -> bool:
        data = client.get(ConfigMap, api_workload.CONFIG_MAP, namespace=api_workload.namespace(env)).data or {}
        return data.get("RELOAD_INTERVAL_S") == str(interval)

    wait_for(applied, what="the ConfigMap change", timeout=120, interval=0.5)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = load_environment("local")
    site = LocalSite.of(env, in_cluster=True)
    provider = KindProvider()
    if not provider.exists(site.cluster):
        raise SystemExit(f"no kind cluster {site.cluster}: run `mlops up local --provider kind` first")
    client = client_for(provider.kubeconfig(site.cluster))

    original = env.apps.inference_api.reload_interval_s
    latencies = []
    for i in range(args.rounds):
        latencies.append(push_latency(client, env, site.clone_url, original + 1 + i))
    latencies.append(push_latency(client, env, site.clone_url, original))  # back where it was
    print(f"push -> applied by Argo CD in the cluster (poll {env.gitops.poll_interval_s}s): "
          f"median {statistics.median(latencies):.1f}s, max {max(latencies):.1f}s over {len(latencies)} pushes")

    with tempfile.TemporaryDirectory() as tmp:
        run = scale_under_load(client, env, out_dir=Path(tmp) / "scale")
    result = run.report.result
    print(f"HPA {run.floor}..{run.ceiling}: first scale-up after {run.seconds_to_scale_up}s of load, peak "
          f"{run.peak_replicas} replicas, fewest ready {run.fewest_ready}, back to {run.floor} "
          f"{run.seconds_to_scale_down:.0f}s after the load")
    for name, e in result.endpoints.items():
        print(f"  {name}: {e.requests} requests, p50 {e.median_ms:.0f} ms, p95 {e.p95_ms:.0f} ms, p99 {e.p99_ms:.0f} ms")
    print(f"  {result.requests_per_s:.0f} req/s, failure ratio {result.failure_ratio:.4f}; gate "
          f"{'passed' if run.report.passed else 'failed: ' + '; '.join(b.message for b in run.report.verdict.breaches)}")
    print("  replicas over time: " + " ".join(f"{s.at_s:.0f}s:{s.replicas}/{s.ready}" for s in run.samples[::5]))


if __name__ == "__main__":
    main()
