"""Writing a run's results: partition output (atomic objects, rerun replaces), monitoring append,
and the per-run folder the cleanup job manages. Nothing here is called in DRY_RUN."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from apps.batch.schema import MONITORING_TABLE, OUTPUT_TABLE, REJECTS_TABLE, RUNS, MonitoringRecord, part_key
from apps.storage import ObjectNotFound, ObjectStore

SUCCESS = "_SUCCESS"


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def write_partition(store: ObjectStore, *, partition: str, output: pa.Table, rejects: pa.Table, run_id: str) -> list[str]:
    """Replace the partition's output and rejects; `_SUCCESS` (written last) names the run they came from.

    Each object is written atomically (temp + rename, or one S3 PUT) at a fixed key, so a rerun
    replaces rather than duplicates; the marker is removed first, so a reader that checks
    `_SUCCESS` never pairs a new output with an old marker.
    """
    marker = part_key(OUTPUT_TABLE, partition, SUCCESS)
    store.delete(marker)
    keys = [part_key(OUTPUT_TABLE, partition), part_key(REJECTS_TABLE, partition)]
    store.put_bytes(keys[0], parquet_bytes(output))
    store.put_bytes(keys[1], parquet_bytes(rejects))
    # Parts other runs may have left (another writer, an older layout) would be read as duplicates.
    for table in (OUTPUT_TABLE, REJECTS_TABLE):
        for key in store.list(f"{table}/partition={partition}/"):
            if key.endswith(".parquet") and key not in keys:
                store.delete(key)
    store.put_bytes(marker, json.dumps({"run_id": run_id, "rows": output.num_rows, "rejected": rejects.num_rows}).encode())
    return [*keys, marker]


def append_monitoring(store: ObjectStore, record: MonitoringRecord) -> str:
    key = part_key(MONITORING_TABLE, record.partition, f"{record.runtime_ts:%Y%m%dT%H%M%S%f}-{record.run_id}.parquet")
    store.put_bytes(key, parquet_bytes(record.to_table()))
    return key


def read_monitoring(store: ObjectStore, partition: str | None = None) -> list[dict]:
    """Every monitoring record (of one partition), oldest first."""
    prefix = f"{MONITORING_TABLE}/" + (f"partition={partition}/" if partition else "")
    rows: list[dict] = []
    for key in store.list(prefix):
        if key.endswith(".parquet"):
            rows.extend(pq.read_table(io.BytesIO(store.get_bytes(key))).to_pylist())
    return sorted(rows, key=lambda r: r["runtime_ts"])


def read_output(store: ObjectStore, partition: str, table: str = OUTPUT_TABLE) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get_bytes(part_key(table, partition))))


def partition_done(store: ObjectStore, partition: str) -> bool:
    return store.exists(part_key(OUTPUT_TABLE, partition, SUCCESS))


def write_run_config(store: ObjectStore, run_id: str, config: dict) -> None:
    store.put_bytes(f"{RUNS}/{run_id}/config.json", json.dumps(config, sort_keys=True, default=str).encode())


def write_run_status(store: ObjectStore, run_id: str, status: dict) -> None:
    store.put_bytes(f"{RUNS}/{run_id}/status.json", json.dumps(status, sort_keys=True, default=str).encode())


def write_run_data(store: ObjectStore, run_id: str, name: str, table: pa.Table) -> None:
    store.put_bytes(f"{RUNS}/{run_id}/data/{name}", parquet_bytes(table))


def read_json(store: ObjectStore, key: str) -> dict | None:
    try:
        return json.loads(store.get_bytes(key))
    except ObjectNotFound:
        return None
