"""A publisher process for the concurrency test: waits for a start signal, then publishes.

python -m tests.manifests._publisher <repo> <go-file> <path> <tag>...
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from argocd.publish import publish
from argocd.render import render_environment
from argocd.validate import validate_tree
from environments import load_environment


def main(repo: str, go: str, path: str, *tags: str) -> None:
    env = load_environment("local", {"gitops": {"repo_url": repo, "path": path}})
    trees = [render_environment(env, image_tag=tag) for tag in tags]
    validate_tree(env, trees[0])  # warm the schema caches so every process races at publish
    deadline = time.monotonic() + 120
    while not Path(go).exists():  # a start barrier: all processes push at the same moment
        if time.monotonic() > deadline:
            raise SystemExit("no start signal within 120 s")
        time.sleep(0.01)
    results = [publish(env, tree, source=f"race-{path}") for tree in trees]
    print(json.dumps([{"commit": r.commit, "attempts": r.attempts} for r in results]))


if __name__ == "__main__":
    main(*sys.argv[1:])
