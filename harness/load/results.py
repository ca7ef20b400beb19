"""Measured figures of one run, read from Locust's own CSV statistics (`<prefix>_stats.csv`).

Percentiles are Locust's (computed over every request of the run, failed ones included);
requests/s is Locust's total rate: requests over the time from first to last request.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.load.errors import LoadRunError

AGGREGATED = "Aggregated"


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
    endpoints: dict[str, EndpointResult]

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def _number(row: dict[str, str], column: str, source: Path) -> float:
    raw = row.get(column)
    if raw is None:
        raise LoadRunError(f"{source}: column {column!r} missing; columns: {sorted(row)}")
    if raw in ("", "N/A"):
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise LoadRunError(f"{source}: column {column!r} of {row.get('Name')!r} is not a number: {raw!r}") from None


def _endpoint(row: dict[str, str], source: Path) -> EndpointResult:
    return EndpointResult(
        requests=int(_number(row, "Request Count", source)),
        failures=int(_number(row, "Failure Count", source)),
        median_ms=_number(row, "50%", source),
        p95_ms=_number(row, "95%", source),
        p99_ms=_number(row, "99%", source),
        max_ms=_number(row, "Max Response Time", source),
        requests_per_s=_number(row, "Requests/s", source),
    )


def read_stats_csv(path: Path) -> RunResult:
    """Parse `<prefix>_stats.csv`; endpoints are keyed "METHOD /path" like env.perf's thresholds."""
    if not path.is_file():
        raise LoadRunError(f"Locust wrote no statistics at {path}: see locust.log beside it")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = next((r for r in rows if r.get("Name") == AGGREGATED), None)
    if total is None:
        raise LoadRunError(f"{path}: no {AGGREGATED!r} row; Locust made no request at all")
    endpoints = {f"{r['Type']} {r['Name']}": _endpoint(r, path) for r in rows if r.get("Name") != AGGREGATED}
    agg = _endpoint(total, path)
    return RunResult(
        requests=agg.requests, failures=agg.failures, requests_per_s=agg.requests_per_s, endpoints=endpoints
    )
