"""How long the offline plan takes per environment (the program under Pulumi's mocks).

    .venv/bin/python tests/benchmarks/bench_infra_plan.py

Prints the first run (cold: provider modules import lazily on first use) and the median of
the warm runs for dev, staging and prod, with the resource count of each.
"""

from __future__ import annotations

import statistics
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

from environments import load_environment  # noqa: E402
from infra.mocks import run_program  # noqa: E402

WARM_RUNS = 3


def main() -> None:
    started = time.perf_counter()
    import infra.platform  # noqa: F401  (the imports a CLI invocation pays once)

    print(f"import infra.platform: {time.perf_counter() - started:.2f}s")
    for name in ("dev", "staging", "prod"):
        env = load_environment(name)
        times, count = [], 0
        for _ in range(1 + WARM_RUNS):
            t0 = time.perf_counter()
            run = run_program(env)
            times.append(time.perf_counter() - t0)
            count = sum(1 for r in run.resources if r.custom)
        print(f"{name:8} {count:4d} resources  first {times[0]:.2f}s  warm median {statistics.median(times[1:]):.2f}s")


if __name__ == "__main__":
    main()
