"""Prometheus metrics of batch runs (scraped in the long-running mode; logged otherwise)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from apps.batch.schema import MonitoringRecord

RUNS = Counter("pcc_batch_runs_total", "Batch runs by status", ["status"])
ROWS = Counter("pcc_batch_rows_total", "Rows by outcome", ["outcome"])
STAGE_SECONDS = Gauge("pcc_batch_stage_seconds", "Duration of each stage in the last run", ["stage"])
LAST_RUN = Gauge("pcc_batch_last_run_timestamp_seconds", "When the last run finished, by status", ["status"])


def observe(record: MonitoringRecord) -> None:
    RUNS.labels(record.status).inc()
    ROWS.labels("in").inc(record.rows_in)
    ROWS.labels("out").inc(record.rows_out)
    ROWS.labels("rejected").inc(record.rows_rejected)
    for stage, seconds in record.durations.model_dump().items():
        STAGE_SECONDS.labels(stage.removesuffix("_s")).set(seconds)
    LAST_RUN.labels(record.status).set(record.runtime_ts.timestamp() + record.total_s)
