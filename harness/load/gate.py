"""The gate: measured figures against env.perf's thresholds and the recorded baseline.

Pure: no I/O. A run fails only on what the environment says; Locust's own exit code (non-zero
on a single failed request) is recorded beside the verdict but never decides it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from environments.model import LoadProfile
from harness.load.baseline import Baseline
from harness.load.results import RunResult

BreachKind = Literal["latency", "failures", "throughput", "traffic", "regression"]


class Breach(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BreachKind
    threshold: str  # e.g. "POST /v1/predict p95", "failure ratio", "requests/s"
    measured: float
    allowed: float
    unit: str
    detail: str = ""

    @property
    def message(self) -> str:
        text = f"{self.threshold}: measured {_fmt(self.measured, self.unit)}, allowed {_fmt(self.allowed, self.unit)}"
        return f"{text} ({self.detail})" if self.detail else text


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    breaches: list[Breach]
    notes: list[str] = []

    @property
    def passed(self) -> bool:
        return not self.breaches

    def summary(self) -> str:
        if self.passed:
            return f"perf gate passed: profile {self.profile}"
        lines = [f"perf gate failed: profile {self.profile}, {len(self.breaches)} threshold(s) breached"]
        lines += [f"  - {b.message}" for b in self.breaches]
        return "\n".join(lines)


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.1f} {unit}"


def evaluate(
    *,
    profile_name: str,
    profile: LoadProfile,
    result: RunResult,
    baseline: Baseline | None = None,
    regression_ratio: float | None = None,
    regression_floor_ms: float = 0.0,
) -> Verdict:
    """Every threshold of `profile`, then (when a baseline is given) the slowdown check."""
    breaches: list[Breach] = []
    notes: list[str] = []
    for key, limit in profile.endpoints.items():
        measured = result.endpoints.get(key)
        if measured is None or measured.requests == 0:
            breaches.append(
                Breach(kind="traffic", threshold=f"{key} requests", measured=0, allowed=1, unit="requests",
                       detail="the endpoint got no traffic: check the locustfile's tasks and the endpoint key")
            )
            continue
        for metric, value, allowed in (("p95", measured.p95_ms, limit.p95_ms), ("p99", measured.p99_ms, limit.p99_ms)):
            if value > allowed:
                breaches.append(Breach(kind="latency", threshold=f"{key} {metric}", measured=value, allowed=allowed,
                                       unit="ms"))
    if result.failure_ratio > profile.failure_ratio:
        breaches.append(
            Breach(kind="failures", threshold="failure ratio", measured=result.failure_ratio,
                   allowed=profile.failure_ratio, unit="ratio",
                   detail=f"{result.failures} of {result.requests} requests failed")
        )
    elif result.failures:
        notes.append(
            f"{result.failures} of {result.requests} requests failed ({result.failure_ratio:.2%}), within the allowed "
            f"{profile.failure_ratio:.2%}"
        )
    if result.requests_per_s < profile.min_rps:
        breaches.append(Breach(kind="throughput", threshold="requests/s", measured=result.requests_per_s,
                               allowed=profile.min_rps, unit="req/s", detail="minimum"))
    if result.requests >= profile.max_requests:
        notes.append(f"stopped at the request cap ({profile.max_requests}) before the duration ran out")
    if baseline is not None and regression_ratio is not None:
        breaches += _regressions(result, baseline, regression_ratio, regression_floor_ms)
    return Verdict(profile=profile_name, breaches=breaches, notes=notes)


def _regressions(result: RunResult, baseline: Baseline, ratio: float, floor_ms: float) -> list[Breach]:
    where = f"baseline {baseline.machine}/{baseline.env}/{baseline.profile} of {baseline.recorded_at:%Y-%m-%d}"
    found: list[Breach] = []
    for key, base in baseline.endpoints.items():
        now = result.endpoints.get(key)
        if now is None or now.requests == 0:
            continue
        allowed = max(base.p95_ms * ratio, base.p95_ms + floor_ms)
        if now.p95_ms > allowed:
            found.append(
                Breach(kind="regression", threshold=f"{key} p95 vs baseline", measured=now.p95_ms, allowed=allowed,
                       unit="ms", detail=f"{now.p95_ms / base.p95_ms if base.p95_ms else float('inf'):.2f}x the "
                                         f"{where} ({base.p95_ms:.1f} ms); limit {ratio}x")
            )
    floor_rps = baseline.requests_per_s / ratio
    if result.requests_per_s < floor_rps:
        found.append(
            Breach(kind="regression", threshold="requests/s vs baseline", measured=result.requests_per_s,
                   allowed=floor_rps, unit="req/s",
                   detail=f"{where} did {baseline.requests_per_s:.1f} req/s; limit 1/{ratio} of it")
        )
    return found
