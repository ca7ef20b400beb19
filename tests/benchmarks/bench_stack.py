"""Local stack figures: the real Pulumi CLI and engine on a throwaway kwok cluster, state and
GitOps repo (nothing of the main job's is touched).

    .venv/bin/python tests/benchmarks/bench_stack.py [--rounds 3]

Prints the time of a first `up` (every object created, the tree published), then per round a
`preview`, an `up` with refresh and a plain `up` with nothing changed. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from argocd.render import render_environment
from environments import load_environment
from harness.argocd_local.loop import prepare_cluster
from harness.ports import free_port
from harness.clusters.kube import client_for
from harness.clusters.providers import KwokProvider
from harness.clusters.session import cluster_session
from harness.stack import PASSPHRASE_ENV, LocalSite, run


def timed(what: str, call: Callable[[], object]) -> float:
    started = time.monotonic()
    run(what, call)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault(PASSPHRASE_ENV, "benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = load_environment("local", {"gitops": {"repo_url": str(work / "gitops.git")}})
        site = LocalSite.of(env, cluster=f"mlops-bench-stack-{os.getpid()}", state=work / "stacks", git_port=free_port())
        with cluster_session(KwokProvider(), site.cluster, env=env) as info:
            prepare_cluster(client_for(info.kubeconfig), render_environment(env, repo_url=site.clone_url))
            started = time.monotonic()
            stack = site.stack(info.kubeconfig)
            print(f"stack select + config (CLI calls, Argo CD manifests written): {time.monotonic() - started:.1f}s")
            print(f"first up (17 resources created, tree published): {timed('up', stack.up):.1f}s")
            figures: dict[str, list[float]] = {"preview": [], "up with refresh": [], "up": []}
            for _ in range(args.rounds):
                figures["preview"].append(timed("preview", stack.preview))
                figures["up with refresh"].append(timed("up", lambda: stack.up(refresh=True)))
                figures["up"].append(timed("up", stack.up))
            for name, seconds in figures.items():
                print(f"{name}, nothing changed: median {statistics.median(seconds):.1f}s of {args.rounds} "
                      f"({', '.join(f'{s:.1f}' for s in seconds)})")


if __name__ == "__main__":
    main()
