"""Figures for the GitOps room: render, validate and publish times per environment.

    .venv/bin/python tests/benchmarks/bench_gitops.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from apps.cloud import CloudMetadata
from argocd.publish import publish
from argocd.render import render_environment
from argocd.validate import validate_tree
from environments import load_environment

ENVS = ["local", "dev", "staging", "prod"]
# A cloud stack's `gitops_metadata`, as far as rendering cares (ids, no roles: Pod Identity).
CLOUD = CloudMetadata(registry="123456789012.dkr.ecr.ap-southeast-2.amazonaws.com/ml-platform",
                      vpc_id="vpc-0a1b2c3d4e5f60718", file_system_id="fs-0a1b2c3d4e5f60718")


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - start) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "bench.git"
        print(f"{'env':8} {'files':>5} {'bytes':>7} {'render ms':>10} {'validate ms':>12} {'publish ms':>11} {'no-op ms':>9}")
        for name in ENVS:
            env = load_environment(name, {"gitops": {"repo_url": str(repo)}})
            tree, render_ms = timed(render_environment, env, cloud=CLOUD if env.aws else None)
            _, validate_ms = timed(validate_tree, env, tree)
            _, publish_ms = timed(publish, env, tree, source="bench")
            _, noop_ms = timed(publish, env, tree, source="bench")
            size = sum(len(v) for v in tree.values())
            print(f"{name:8} {len(tree):5} {size:7} {render_ms:10.1f} {validate_ms:12.1f} {publish_ms:11.1f} {noop_ms:9.1f}")
        print("(validate of the first env includes loading the schemas; publish includes its own validation)")


if __name__ == "__main__":
    main()
