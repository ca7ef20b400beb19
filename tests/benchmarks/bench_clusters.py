"""Cluster figures: toolchain cache size, kwok cluster creation (new, then reused), deploy of a tree.

    .venv/bin/python tests/benchmarks/bench_clusters.py [--env local]

Prints figures; asserts nothing (speed goals live here, not in tests).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from argocd.render import render_environment
from environments import load_environment
from harness.clusters.deploy import apply_tree, static_volumes, wait_deployment_available
from harness.clusters.kube import client_for
from harness.clusters.providers import KwokProvider
from harness.clusters.session import cluster_session
from harness.toolchain import tools_dir


def du(path: str) -> str:
    out = subprocess.run(["du", "-sh", path], capture_output=True, text=True, check=False).stdout.split()
    return out[0] if out else "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="local")
    args = parser.parse_args()
    env = load_environment(args.env)
    provider = KwokProvider()
    started = time.monotonic()
    provider.tools()
    print(f"toolchain ready (cache or build): {time.monotonic() - started:.1f}s; cache {tools_dir()} = {du(str(tools_dir()))}")
    name = f"mlops-bench-{os.getpid()}"
    for attempt in ("first", "second"):
        with cluster_session(provider, f"{name}-{attempt}", env=env) as info:
            print(f"kwok cluster create ({attempt} on this machine's warm page cache={attempt == 'second'}): {info.seconds:.1f}s")
            if attempt == "first":
                reused = provider.create(info.name, env=env)
                print(f"kwok cluster reuse (--keep-cluster path): {reused.seconds:.1f}s")
                client = client_for(info.kubeconfig)
                t0 = time.monotonic()
                tree = render_environment(env)
                static_volumes(client, tree)
                applied = apply_tree(client, tree, wait_claims=True)
                print(f"apply {args.env} tree ({len(applied.objects)} objects, PVCs bound per wave): {time.monotonic() - t0:.1f}s")
                api = env.apps.inference_api
                wait_deployment_available(client, "ml-inference-api", api.namespace)
                print(f"... and the inference API Deployment available: {time.monotonic() - t0:.1f}s")
            t_delete = time.monotonic()
        print(f"kwok cluster delete: {time.monotonic() - t_delete:.1f}s")


if __name__ == "__main__":
    main()
