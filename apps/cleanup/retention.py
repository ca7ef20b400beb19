"""Retention of run data (EEMT seed): successful runs keep their config but lose their data after
SUCCESS_RETENTION_HOURS; failed runs are removed entirely after FAILED_RETENTION_HOURS.

A run is the folder `runs/<run_id>/` on the data store: `config.json` (what was asked),
`status.json` (running | succeeded | failed, with times) and `data/...` (working data).
A run still marked `running` past the failed retention is treated as failed: its process died
without recording an outcome. Every decision is logged; outside DRY_RUN a JSON log of what was
removed is kept under `cleanup_logs/`.

    >>> report = apply_retention(store, success_hours=168, failed_hours=12, dry_run=True)   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from apps.storage import ObjectNotFound, ObjectStore

RUNS = "runs"
LOGS = "cleanup_logs"
log = structlog.get_logger(__name__)

Action = Literal["data-removed", "run-removed", "kept", "skipped"]


class RunDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str
    status: str
    age_hours: float | None
    action: Action
    reason: str
    removed_keys: list[str] = Field(default_factory=list)


class CleanupReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    started_at: datetime
    store: str
    dry_run: bool
    success_retention_hours: int
    failed_retention_hours: int
    decisions: list[RunDecision]
    log_key: str | None = None

    @property
    def removed_keys(self) -> list[str]:
        return [k for d in self.decisions for k in d.removed_keys]


def _read(store: ObjectStore, key: str) -> dict | None:
    try:
        value = json.loads(store.get_bytes(key))
    except (ObjectNotFound, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _time(record: dict | None, *fields: str) -> datetime | None:
    for field in fields:
        raw = (record or {}).get(field)
        if isinstance(raw, str):
            try:
                ts = datetime.fromisoformat(raw)
            except ValueError:
                continue
            return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return None


def decide(run_id: str, keys: list[str], status: dict | None, config: dict | None, *, now: datetime,
           success_hours: int, failed_hours: int) -> RunDecision:
    """What retention does to one run (pure: no store access)."""
    state = (status or {}).get("status", "unknown")
    when = _time(status, "finished_at") or _time(status, "started_at") or _time(config, "started_at")
    if when is None:
        return RunDecision(run_id=run_id, status=state, age_hours=None, action="skipped",
                           reason="no readable status.json or config.json time; left for a person to inspect")
    age = (now - when) / timedelta(hours=1)
    data = [k for k in keys if k.startswith(f"{RUNS}/{run_id}/data/")]
    if state == "succeeded":
        if age < success_hours:
            return RunDecision(run_id=run_id, status=state, age_hours=age, action="kept",
                               reason=f"succeeded {age:.1f}h ago, within {success_hours}h")
        if not data:
            return RunDecision(run_id=run_id, status=state, age_hours=age, action="kept",
                               reason="succeeded; data already removed, config kept")
        return RunDecision(run_id=run_id, status=state, age_hours=age, action="data-removed", removed_keys=data,
                           reason=f"succeeded {age:.1f}h ago, past {success_hours}h: data removed, config kept")
    if state in ("failed", "running", "unknown"):
        if age < failed_hours:
            return RunDecision(run_id=run_id, status=state, age_hours=age, action="kept",
                               reason=f"{state} {age:.1f}h ago, within {failed_hours}h")
        why = "failed" if state == "failed" else f"still '{state}' (the process died without an outcome)"
        return RunDecision(run_id=run_id, status=state, age_hours=age, action="run-removed", removed_keys=list(keys),
                           reason=f"{why} {age:.1f}h ago, past {failed_hours}h: removed entirely")
    return RunDecision(run_id=run_id, status=state, age_hours=age, action="skipped",
                       reason=f"unknown status {state!r}; expected running, succeeded or failed")


def apply_retention(store: ObjectStore, *, success_hours: int, failed_hours: int, dry_run: bool,
                    now: datetime | None = None) -> CleanupReport:
    """Decide for every run under `runs/`, remove what retention says (unless dry_run), log it all."""
    now = now or datetime.now(UTC)
    by_run: dict[str, list[str]] = defaultdict(list)
    for key in store.list(f"{RUNS}/"):
        parts = key.split("/")
        if len(parts) >= 3:
            by_run[parts[1]].append(key)
    decisions = []
    for run_id in sorted(by_run):
        keys = by_run[run_id]
        decision = decide(run_id, keys, _read(store, f"{RUNS}/{run_id}/status.json"),
                          _read(store, f"{RUNS}/{run_id}/config.json"), now=now,
                          success_hours=success_hours, failed_hours=failed_hours)
        decisions.append(decision)
        if decision.removed_keys and not dry_run:
            # Status last: a run interrupted mid-removal is still recognisable and retried next time.
            for key in sorted(decision.removed_keys, key=lambda k: k.endswith("status.json")):
                store.delete(key)
        log.info("retention_decision", run_id=run_id, action=decision.action, reason=decision.reason,
                 removed=len(decision.removed_keys), dry_run=dry_run)
    report = CleanupReport(started_at=now, store=store.uri, dry_run=dry_run, success_retention_hours=success_hours,
                           failed_retention_hours=failed_hours, decisions=decisions)
    if not dry_run:
        report.log_key = f"{LOGS}/{now:%Y%m%dT%H%M%S%f}.json"
        store.put_bytes(report.log_key, report.model_dump_json(indent=2).encode())
    counts = {a: sum(d.action == a for d in decisions) for a in ("data-removed", "run-removed", "kept", "skipped")}
    log.info("retention_done", dry_run=dry_run, objects_removed=len(report.removed_keys), **counts)
    return report
