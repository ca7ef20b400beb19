"""Measured figures of one run, read from Locust's final JSON statistics (`--json-file`).

The JSON is written once, at shutdown, from the final counters; Locust's CSV is rewritten
only every second while the run goes on, so its last second can be missing (it is kept as an
artifact, not judged). Percentiles are computed as Locust computes them, from its histogram
of rounded response times (failed requests included); requests/s is the run's total rate:
requests over the time from the first to the last request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.load.errors import LoadRunError


class LocustEntry(BaseModel):
    """One entry of Locust's stats JSON (the fields we read)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    method: str
    num_requests: int = Field(ge=0)
    num_none_requests: int = Field(default=0, ge=0)
    num_failures: int = Field(ge=0)
    total_response_time: float
    max_response_time: float
    start_time: float
    last_request_timestamp: float | None
    response_times: dict[int, int]

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"


class EndpointResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int
    failures: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    requests_per_s: float


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int
    failures: int
    requests_per_s: float
    duration_s: float = 0.0
    endpoints: dict[str, EndpointResult]

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def percentile(response_times: dict[int, int], count: int, fraction: float) -> int:
    """The response time `fraction` of the `count` requests finished within (Locust's method)."""
    within = int(count * fraction)
    seen = 0
    for value in sorted(response_times, reverse=True):
        seen += response_times[value]
        if count - seen <= within:
            return value
    return 0


def _endpoint(*, requests: int, timed: int, failures: int, times: dict[int, int], max_ms: float,
              seconds: float) -> EndpointResult:
    return EndpointResult(
        requests=requests,
        failures=failures,
        median_ms=percentile(times, timed, 0.5),
        p95_ms=percentile(times, timed, 0.95),
        p99_ms=percentile(times, timed, 0.99),
        max_ms=round(max_ms, 1),
        requests_per_s=round(requests / seconds, 2) if seconds > 0 else 0.0,
    )


def read_stats_json(path: Path) -> RunResult:
    """Parse Locust's `--json-file` output; endpoints keyed "METHOD /path" like env.perf's thresholds."""
    if not path.is_file():
        raise LoadRunError(f"Locust wrote no statistics at {path}: see locust.log beside it")
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        entries = [LocustEntry.model_validate(e) for e in raw]
    except (ValueError, TypeError, ValidationError) as e:
        raise LoadRunError(f"{path}: not Locust's stats JSON (a list of entries): {e}") from None
    entries = [e for e in entries if e.num_requests]
    if not entries:
        raise LoadRunError(f"{path}: no request was made; see locust.log beside it")
    start = min(e.start_time for e in entries)
    end = max(e.last_request_timestamp or e.start_time for e in entries)
    seconds = end - start
    endpoints: dict[str, EndpointResult] = {}
    for entry in entries:
        endpoints[entry.key] = _endpoint(requests=entry.num_requests, timed=entry.num_requests - entry.num_none_requests,
                                         failures=entry.num_failures, times=entry.response_times,
                                         max_ms=entry.max_response_time, seconds=seconds)
    requests = sum(e.num_requests for e in entries)
    return RunResult(
        requests=requests,
        failures=sum(e.num_failures for e in entries),
        requests_per_s=round(requests / seconds, 2) if seconds > 0 else 0.0,
        duration_s=round(seconds, 2),
        endpoints=endpoints,
    )
