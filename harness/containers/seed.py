"""`python -m harness.containers.seed URI [--classifier C]`: make sure a registry serves a model.

Runs in its own process so the registry's credentials (S3 keys of a test store) travel in the
child's environment and never touch ours. Publishes and promotes a seeded model of the
inference seed's shape only when no version is active; prints the active version.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping

from harness.containers.errors import RegistrySeedError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.containers.seed")
    parser.add_argument("uri")
    parser.add_argument("--classifier", default="random_forest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from apps.inference import ModelRegistry, synthetic_dataset, train

    registry = ModelRegistry(args.uri, endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
    version = registry.active_version()
    if version is None:
        trained = train(synthetic_dataset(seed=args.seed), classifier=args.classifier, seed=args.seed)
        version = registry.publish(trained)
        registry.promote(version)
    print(version)
    return 0


def seed_registry(uri: str, *, classifier: str, extra_env: Mapping[str, str] | None = None,
                  timeout_s: float = 300.0) -> str:
    """Run this module in a child process; returns the registry's active version."""
    argv = [sys.executable, "-m", "harness.containers.seed", uri, "--classifier", classifier]
    proc = subprocess.run(argv, env={**os.environ, **(extra_env or {})}, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RegistrySeedError(f"could not seed the model registry {uri}: exit {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    sys.exit(main())
