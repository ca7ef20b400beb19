"""One run of the batch pipeline for one partition, wiring the stages; returns its monitoring record.

    >>> record = run_partition(settings, "20250115")          # doctest: +SKIP
    >>> record.status, record.rows_in, record.rows_out        # doctest: +SKIP
    ('succeeded', 1000, 992)
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import structlog

from apps.batch import metrics
from apps.batch.exceptions import ModelMismatch
from apps.batch.output import append_monitoring, write_partition, write_run_config, write_run_data, write_run_status
from apps.batch.schema import MonitoringRecord, StageDurations
from apps.batch.settings import BatchSettings
from apps.batch.sources import ParquetSource, SampleSource, Source
from apps.batch.stages import Rejects, check_model, infer, postprocess, preprocess
from apps.features import Featurizer
from apps.storage import ObjectStore, open_store

if TYPE_CHECKING:
    from apps.inference import Predictor

log = structlog.get_logger(__name__)


def make_source(settings: BatchSettings, store: ObjectStore) -> Source:
    if settings.source == "sample":
        return SampleSource(rows=settings.sample_rows, seed=settings.sample_seed)
    return ParquetSource(store)


def new_run_id(partition: str, now: datetime) -> str:
    return f"{partition}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def run_partition(settings: BatchSettings, partition: str, *, store: ObjectStore | None = None,
                  source: Source | None = None, featurizer: Callable[[], Featurizer] | None = None,
                  predictor_loader: Callable[[], Predictor] | None = None) -> MonitoringRecord:
    """Run every stage for `partition`; writes output, monitoring and run records unless DRY_RUN."""
    store = store or open_store(settings.data_uri, endpoint_url=settings.s3_endpoint_url)
    source = source or make_source(settings, store)
    featurizer = featurizer or lru_cache(maxsize=1)(lambda: Featurizer.default(settings.embedder))
    now = datetime.now(UTC)
    run_id = new_run_id(partition, now)
    bound = log.bind(run_id=run_id, partition=partition, dry_run=settings.dry_run)
    durations = StageDurations()
    counts = {"rows_in": 0, "rows_out": 0, "rows_rejected": 0, "features_computed": 0}
    model_version: str | None = None
    embedder = "none"
    started = time.perf_counter()
    if not settings.dry_run:
        write_run_config(store, run_id, {"partition": partition, "source": source.name, "embedder": settings.embedder,
                                         "data_uri": settings.data_uri, "registry": settings.model_registry_uri,
                                         "started_at": now.isoformat()})
        write_run_status(store, run_id, {"status": "running", "started_at": now.isoformat()})
    bound.info("run_started", source=source.name)
    error: str | None = None
    try:
        t = time.perf_counter()
        table = source.read(partition)
        durations.ingestion_s = time.perf_counter() - t
        counts["rows_in"] = table.num_rows

        t = time.perf_counter()
        rejects = Rejects()
        pre = preprocess(table, featurizer, rejects)
        counts["features_computed"] = pre.computed
        embedder = featurizer().embedder.name if pre.computed else "precomputed"
        durations.preprocessing_s = time.perf_counter() - t

        t = time.perf_counter()
        predictor = (predictor_loader or _load_predictor(settings))()
        check_model(list(predictor.schema.features), featurizer() if pre.computed else None)
        model_version = predictor.version
        with np.errstate(all="ignore"):  # rejected rows may hold NaN; their scores are discarded
            scores = infer(predictor.predict_proba, pre.X, positive_column=list(predictor.schema.classes).index(1))
        scores = scores[pre.rows]
        durations.inference_s = time.perf_counter() - t

        t = time.perf_counter()
        case_ids = table.column("case_id").combine_chunks()
        output = postprocess(case_ids, pre.rows, scores, partition=partition, run_id=run_id,
                             model_version=model_version, now=now, rejects=rejects)
        rejects_table = rejects.to_table(case_ids, partition=partition, run_id=run_id)
        durations.postprocessing_s = time.perf_counter() - t
        counts["rows_out"], counts["rows_rejected"] = output.num_rows, rejects_table.num_rows

        t = time.perf_counter()
        if not settings.dry_run:
            write_partition(store, partition=partition, output=output, rejects=rejects_table, run_id=run_id)
            write_run_data(store, run_id, "rejects.parquet", rejects_table)
            write_run_data(store, run_id, "input.parquet", table.drop_columns(["features"]))
        durations.output_s = time.perf_counter() - t
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        bound.error("run_failed", error=error)
        raise
    finally:
        total = time.perf_counter() - started
        record = MonitoringRecord(
            run_id=run_id, partition=partition, runtime_ts=now, source=source.name, dry_run=settings.dry_run,
            status="failed" if error else "succeeded", **counts, embedder=embedder, model_version=model_version,
            durations=durations, total_s=round(total, 6), rows_per_s=round(counts["rows_in"] / total, 1) if total else 0.0,
            error=error)
        metrics.observe(record)
        if not settings.dry_run:
            append_monitoring(store, record)
            write_run_status(store, run_id, {"status": record.status, "finished_at": datetime.now(UTC).isoformat(),
                                             "error": error})
        bound.info("run_finished", **record.model_dump(mode="json", exclude={"run_id", "partition", "dry_run"}))
    return record


def _load_predictor(settings: BatchSettings) -> Callable[[], Predictor]:
    def load() -> Predictor:
        from apps.inference import ModelRegistry, NoActiveVersion, load_runtime

        registry = ModelRegistry(settings.model_registry_uri, endpoint_url=settings.s3_endpoint_url)
        try:
            return load_runtime(registry.load(with_sklearn=False))
        except NoActiveVersion as e:
            raise ModelMismatch(f"{e}; for a PCC model trained on synthetic cases: `mlops apps batch train-sample "
                                f"--registry {settings.model_registry_uri}`") from e

    return load
