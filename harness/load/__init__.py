"""Locust performance gates: locustfiles per profile, a headless runner, the gate and baselines.

    >>> from environments import load_environment
    >>> from harness.load import run_gate
    >>> verdict = run_gate(env=load_environment("local"), profile="mixed",
    ...                    target_url="http://127.0.0.1:5000", out_dir=Path(".artifacts/load"))
    >>> verdict.passed, [b.message for b in verdict.breaches]

The gate judges the thresholds of `env.perf` (not Locust's own exit code, which fails a run
on a single failed request) and compares with the baseline recorded for this machine profile.
"""

from harness.load.errors import LoadError, LoadRunError, SchemaError, TargetError
from harness.load.gate import Breach, Verdict, evaluate
from harness.load.runner import RunArtifacts, run_gate, run_locust

__all__ = [
    "Breach",
    "LoadError",
    "LoadRunError",
    "RunArtifacts",
    "SchemaError",
    "TargetError",
    "Verdict",
    "evaluate",
    "run_gate",
    "run_locust",
]
