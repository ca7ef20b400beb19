"""The three ways the pipeline runs: one partition, a backfill range, and the long-running mode."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping

import structlog

from apps.batch.exceptions import SettingsError
from apps.batch.output import partition_done
from apps.batch.runner import run_partition
from apps.batch.schema import MonitoringRecord
from apps.batch.settings import BatchSettings, partition_range, yesterday_utc
from apps.storage import open_store

log = structlog.get_logger(__name__)


def backfill(settings: BatchSettings, start: str, end: str, *, environ: Mapping[str, str]) -> list[MonitoringRecord]:
    """Every partition in [start, end]; in an Indexed Job, only the one at JOB_COMPLETION_INDEX."""
    partitions = partition_range(start, end)
    index = environ.get("JOB_COMPLETION_INDEX")
    if index is not None and index != "":
        if not index.isdigit() or int(index) >= len(partitions):
            raise SettingsError(f"JOB_COMPLETION_INDEX={index!r}: expected 0..{len(partitions) - 1} for "
                                f"{start}..{end} ({len(partitions)} partitions); set the Job's completions to match")
        partitions = [partitions[int(index)]]
    return [run_partition(settings, p) for p in partitions]


def serve(settings: BatchSettings, *, stop: threading.Event | None = None) -> None:
    """Long-running mode (the seed's Deployment for testing): metrics on METRICS_PORT, and every
    SERVE_INTERVAL_S run yesterday's partition unless it already succeeded."""
    from apps.observability import serve_metrics

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    store = open_store(settings.data_uri, endpoint_url=settings.s3_endpoint_url)
    server = serve_metrics(settings.metrics_port, ready=lambda: not stop.is_set()) if settings.metrics_port else None
    log.info("serve_started", interval_s=settings.serve_interval_s, metrics_port=settings.metrics_port)
    try:
        while not stop.is_set():
            partition = settings.partition_date or yesterday_utc()
            if settings.dry_run or not partition_done(store, partition):
                try:
                    run_partition(settings, partition, store=store)
                except Exception as e:  # noqa: BLE001 - the run logged and recorded it; keep serving
                    log.error("scheduled_run_failed", partition=partition, error=str(e))
            stop.wait(settings.serve_interval_s)
    finally:
        if server:
            server.stop()
        log.info("serve_stopped")
